from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from emodesk.ui.errors import ErrorReporter, redact, setup_logging

KEY = "AIzaSyD" + "x" * 32


def test_redact_masks_keys_tokens_and_key_values() -> None:
    text = f"url?key={KEY}&x=1 Authorization: Bearer abcdefghijkl api_key='s3cr3tvalue'"
    out = redact(text)
    assert KEY not in out and "abcdefghijkl" not in out and "s3cr3tvalue" not in out
    assert out.count("[redacted]") >= 3


def test_uncaught_error_is_logged_without_secrets_and_shown(qtbot: Any, tmp_path: Path) -> None:
    log_path = setup_logging(tmp_path)
    reporter = ErrorReporter(log_path, lambda: None)
    reporter.install()
    try:
        try:
            raise RuntimeError(f"boom with {KEY}")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    finally:
        reporter.uninstall()
    for handler in logging.getLogger().handlers:
        handler.flush()
    logged = log_path.read_text(encoding="utf-8")
    assert "RuntimeError: boom with [redacted]" in logged and KEY not in logged
    assert reporter.dialog is not None and reporter.dialog.isVisible()
    assert KEY not in reporter.dialog.detailedText()
    reporter.dialog.close()


def test_errors_in_qt_slots_and_in_asyncio_callbacks_reach_the_dialog(
    qtbot: Any, tmp_path: Path
) -> None:
    import asyncio

    import qasync
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    log_path = setup_logging(tmp_path)
    reporter = ErrorReporter(log_path, lambda: None)
    reporter.install()
    loop = qasync.QEventLoop(QApplication.instance(), already_running=False)
    loop.set_exception_handler(reporter.loop_exception)

    def slot() -> None:
        raise ValueError(f"slot failed, key={KEY}")

    async def failing() -> None:
        raise KeyError("task failed")

    async def scenario() -> None:
        QTimer.singleShot(0, slot)  # a Qt slot: PySide6 hands it to sys.excepthook
        await asyncio.sleep(0.05)
        task = asyncio.ensure_future(failing())
        await asyncio.wait([task], timeout=5)
        loop.call_exception_handler({"message": "task failed", "exception": task.exception()})

    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(asyncio.wait_for(scenario(), 10))
    finally:
        reporter.uninstall()
        asyncio.set_event_loop(None)
        loop.close()
    assert any(r.startswith("ValueError: slot failed") for r in reporter.reported)
    assert any(r.startswith("KeyError") for r in reporter.reported)
    assert all(KEY not in r for r in reporter.reported)
    assert reporter.dialog is not None and reporter.dialog.isVisible()
    assert "The app keeps running" in reporter.dialog.text()
    reporter.dialog.close()
