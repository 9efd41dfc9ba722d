"""The push-to-talk key: an application-wide event filter so the key works whatever widget
has focus (except text fields, where Space types a space). Auto-repeat presses are
ignored, and a held key is always released: when the window loses focus or the app is
deactivated mid-press, the key-up never reaches us, so we end the turn ourselves."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QTextEdit,
    QWidget,
)

DEFAULT_PTT_KEY = "Space"


def key_from_text(text: str) -> int:
    """Qt key code for a key name like "Space", "F8" or "Ctrl+T" (modifiers are ignored)."""
    sequence = QKeySequence.fromString(text or DEFAULT_PTT_KEY)
    if sequence.isEmpty():
        raise ValueError(f"not a key: {text!r}")
    return int(sequence[0].key().value)


class PushToTalkKey(QObject):
    pressed = Signal()
    released = Signal()

    def __init__(self, window: QWidget, key_text: str = DEFAULT_PTT_KEY) -> None:
        super().__init__(window)
        self._window = window
        self._key = key_from_text(key_text)
        self.key_text = key_text
        self.held = False
        app = QApplication.instance()
        assert app is not None
        app.installEventFilter(self)
        app.applicationStateChanged.connect(self._on_app_state)

    def detach(self) -> None:
        """Stop watching the application (the window is going away)."""
        self.release()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
            app.applicationStateChanged.disconnect(self._on_app_state)

    def set_key(self, key_text: str) -> None:
        self.release()
        self._key = key_from_text(key_text)
        self.key_text = key_text

    def release(self) -> None:
        """End a held press (focus lost, window hidden, key changed)."""
        if self.held:
            self.held = False
            self.released.emit()

    def _typing_in(self, obj: QObject) -> bool:
        return isinstance(obj, QLineEdit | QTextEdit | QAbstractSpinBox | QComboBox)

    def _mine(self, obj: QObject) -> bool:
        return isinstance(obj, QWidget) and obj.window() is self._window

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self._mine(obj):
            assert isinstance(event, QKeyEvent)
            if event.key() != self._key or (self._typing_in(obj) and not self.held):
                return False
            if kind == QEvent.Type.KeyPress:
                if not event.isAutoRepeat() and not self.held:
                    self.held = True
                    self.pressed.emit()
                return True  # swallow repeats too: they would click focused buttons
            if event.isAutoRepeat():
                return True
            self.release()
            return True
        if kind == QEvent.Type.WindowDeactivate and obj is self._window:
            self.release()
        return False

    def _on_app_state(self, state: Qt.ApplicationState) -> None:
        if state != Qt.ApplicationState.ApplicationActive:
            self.release()
