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
