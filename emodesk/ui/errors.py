"""The global excepthook: an uncaught error is logged (without secrets) to a file in the
platform's log directory and shown in a dialog, instead of vanishing into a terminal the
user never sees or killing the app."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

log = logging.getLogger("emodesk")

# Google API keys, ephemeral tokens (auth_tokens/...), bearer tokens and key=/token= query
# or keyword values. The exact saved key, whatever its shape, is masked by the live
# layer's filter (`install_log_redaction`), which the app installs when it loads a key.
_SECRET_PATTERNS = (
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}|auth_tokens/[0-9A-Za-z_\-.]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|key|token|secret|password)\s*[=:]\s*['\"]?)[^\s'\"&,)]{4,}"),
)


def redact(text: str) -> str:
    text = _SECRET_PATTERNS[0].sub("[redacted]", text)
    for pattern in _SECRET_PATTERNS[1:]:
        text = pattern.sub(lambda m: m.group(1) + "[redacted]", text)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def log_dir() -> Path:
    import platformdirs  # small, but only needed once logging is set up

    return Path(platformdirs.user_log_dir("emodesk", appauthor=False))


def setup_logging(directory: Path | None = None) -> Path:
    """Log to `emodesk.log` (rotated) in the platform log dir; returns the file's path."""
    directory = directory or log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "emodesk.log"
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "emodesk_log", False)]:
        root.removeHandler(old)
        old.close()
    handler.emodesk_log = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    return path


class ErrorReporter:
    """Installed as `sys.excepthook`; shows at most one error dialog at a time."""

    def __init__(self, log_path: Path | None, parent: Callable[[], QWidget | None]) -> None:
        self.log_path = log_path
        self._parent = parent
        self.dialog: QMessageBox | None = None
        self.reported: list[str] = []
        self._previous = sys.excepthook

    def install(self) -> None:
        sys.excepthook = self

    def uninstall(self) -> None:
        if sys.excepthook is self:
            sys.excepthook = self._previous

    def loop_exception(self, loop: object, context: dict[str, Any]) -> None:
        """The asyncio loop's exception handler: a failed callback or an unretrieved
        task error is shown and logged like any other uncaught error."""
        error = context.get("exception")
        if isinstance(error, BaseException):
            self(type(error), error, error.__traceback__)
            return
        message = redact(str(context.get("message", "unknown error")))
        log.error("Uncaught asyncio error: %s", message)
        self.reported.append(message)

    def __call__(
        self,
        kind: type[BaseException],
        error: BaseException,
        tb: TracebackType | None,
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        details = redact("".join(traceback.format_exception(kind, error, tb)))
        log.error("Uncaught error\n%s", details)
        summary = redact(f"{kind.__name__}: {error}")
        self.reported.append(summary)
        if QApplication.instance() is None:
            print(details, file=sys.stderr)
            return
        if self.dialog is not None and self.dialog.isVisible():
            return
        self.dialog = QMessageBox(self._parent())
        self.dialog.setIcon(QMessageBox.Icon.Critical)
        self.dialog.setWindowTitle("EmoDesk — something went wrong")
        where = f"\n\nDetails were written to {self.log_path}." if self.log_path else ""
        self.dialog.setText("An unexpected error occurred. The app keeps running." + where)
        self.dialog.setInformativeText(summary)
        self.dialog.setDetailedText(details)
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.dialog.open()
