"""The window's dialogs: one of each kind at a time, always shown with `open()` (never a
nested `exec()` inside a coroutine, which qasync cannot run under)."""

from __future__ import annotations

import os
from typing import TypeVar

from PySide6.QtWidgets import QWidget

W = TypeVar("W", bound=QWidget)


def replace_dialog(old: QWidget | None, new: W) -> W:
    """`new` takes the place of `old`, which is deleted (not on close, so a test or a
    late signal can still read a closed dialog)."""
    if old is not None and old is not new:
        old.deleteLater()
    return new


def use_qt_dialogs() -> bool:
    # A native dialog cannot be driven offscreen (tests); elsewhere the platform's is nicer.
    return os.environ.get("QT_QPA_PLATFORM", "") == "offscreen"
