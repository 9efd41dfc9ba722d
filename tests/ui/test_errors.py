from __future__ import annotations

import asyncio
import gc
import logging
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer

from emodesk.ui.errors import ErrorReporter, redact, setup_logging
from emodesk.ui.main_window import MainWindow
from tests.support.qt import run, until

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


def test_redact_masks_ephemeral_tokens() -> None:
    token = "auth_tokens/1a2b3c4d5e6f.7g8h-9i0j_k"
    out = redact(f"connect with {token} failed")
    assert token not in out and "1a2b3c4d5e6f" not in out
    assert out == "connect with [redacted] failed"


def test_the_apps_wiring_shows_errors_from_qt_slots_and_asyncio_callbacks(
    window: MainWindow, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    """Through `emodesk.app.install_error_reporting`, as `emodesk.app.run` wires it: the
    errors are raised by Qt and by the loop, never handed to the reporter by the test."""
    from emodesk.app import install_error_reporting

    log_path = setup_logging(tmp_path)
    reporter = install_error_reporting(window, qloop, log_path)

    def slot() -> None:
        raise ValueError(f"slot failed, key={KEY}")

    def callback() -> None:
        raise LookupError("callback failed")

    async def failing_task() -> None:
        raise KeyError("task failed")

    async def scenario() -> None:
        QTimer.singleShot(0, slot)  # a Qt slot: PySide6 hands it to sys.excepthook
        qloop.call_soon(callback)  # an asyncio callback: the loop's exception handler
        await until(lambda: len(reporter.reported) >= 2)
        task = asyncio.ensure_future(failing_task())
        await asyncio.wait([task], timeout=5)
        del task  # never retrieved: the loop reports it when the task is collected
        gc.collect()
        await until(lambda: any(r.startswith("KeyError") for r in reporter.reported))

    try:
        run(qloop, scenario())
    finally:
        reporter.uninstall()
    assert any(r.startswith("ValueError: slot failed") for r in reporter.reported)
    assert any(r.startswith("LookupError: callback failed") for r in reporter.reported)
    assert all(KEY not in r for r in reporter.reported)
    dialog = reporter.dialog
    assert dialog is not None and dialog.isVisible() and dialog.parent() is window
    assert "The app keeps running" in dialog.text()
    flush_log()
    logged = log_path.read_text(encoding="utf-8")
    for text in ("ValueError: slot failed", "LookupError: callback failed", "KeyError"):
        assert text in logged
    assert KEY not in logged
    dialog.close()


def flush_log() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
