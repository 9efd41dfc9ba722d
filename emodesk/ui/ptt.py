"""The push-to-talk key: an application-wide event filter so the key works whatever widget
has focus (except text fields, where Space types a space). Auto-repeat presses are
ignored, and a held key is always released: when the window loses focus or the app is
deactivated mid-press, the key-up never reaches us, so we end the turn ourselves.

A held key repeats. X11 sends each repeat as a KeyRelease/KeyPress pair with the same
timestamp, and Qt flags the pair as auto-repeat only when it finds the press already
queued behind the release; under CPU load it often is not yet, and the pair arrives as a
real release and a real press. So the key asks the X server for detectable auto-repeat
(`ui/x11_keys.py`: repeats come as presses alone) and a key-up ends the hold at once.
Where the server will not have it, a release ends the hold REPEAT_GAP_MS later unless a
press of the same key comes first. Other platforms flag their repeats themselves."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QTextEdit,
    QWidget,
)

from emodesk.ui.x11_keys import enable_detectable_auto_repeat, is_x11

DEFAULT_PTT_KEY = "Space"

# How long a key-up waits for the press that would make it half of an auto-repeat pair,
# and how far apart (in the events' own X timestamps) a release and a press may be and
# still be one pair. X stamps both halves of a pair with the same time, but under load
# the press can be read and handled a while after the release. Every turn's key-up is
# delayed by this much, so it is kept small. Measured with tests/ui/test_ptt_x11.py (Space
# held under Xvfb, 2 cores): with 6 busy loops the press of an unflagged pair came at
# most 16 ms after its release, but with more load it came up to 41 ms late, and a 30 ms
# wait split a hold in 1 run of 20, 40 ms in 1 of 14; 50 ms split none in 15. Only an X
# server that refuses detectable auto-repeat needs it.
REPEAT_GAP_MS = 50

# X timestamps are 32-bit milliseconds that wrap around (every 49.7 days).
_X_TIME_WRAP = 1 << 32


def key_from_text(text: str) -> int:
    """Qt key code for a key name like "Space", "F8" or "Ctrl+T" (modifiers are ignored)."""
    sequence = QKeySequence.fromString(text or DEFAULT_PTT_KEY)
    if sequence.isEmpty():
        raise ValueError(f"not a key: {text!r}")
    return int(sequence[0].key().value)  # type: ignore[index]  # stubs lack __getitem__


def _same_moment(release_ms: int, press_ms: int, gap_ms: int) -> bool:
    """Whether a press stamped `press_ms` is close enough after a release stamped
    `release_ms` to be the other half of an auto-repeat pair. Events made without a
    timestamp (0) cannot tell, and are taken as a pair: the wall-clock wait decides."""
    if not release_ms or not press_ms:
        return True
    return (press_ms - release_ms) % _X_TIME_WRAP <= gap_ms


def platform_repeat_gap_ms() -> int:
    """How long a key-up must wait for a repeat's press on this platform: 0 unless the
    app runs on an X server that will not send repeats without releases."""
    if is_x11() and not enable_detectable_auto_repeat():
        return REPEAT_GAP_MS
    return 0


class PushToTalkKey(QObject):
    pressed = Signal()
    released = Signal()

    def __init__(
        self, window: QWidget, key_text: str = DEFAULT_PTT_KEY, repeat_gap_ms: int | None = None
    ) -> None:
        """`repeat_gap_ms`: how long a key-up waits for the press of an auto-repeat pair
        (None: what the platform needs, `platform_repeat_gap_ms`)."""
        super().__init__(window)
        self._window = window
        self._key = key_from_text(key_text)
        self.key_text = key_text
        self._held = False
        # A key-up seen while held: the hold ends when this fires, unless a press of the
        # same key comes first (then it was the release half of an auto-repeat pair).
        self._release_timer = QTimer(self)
        self._release_timer.setSingleShot(True)
        self._release_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.repeat_gap_ms = platform_repeat_gap_ms() if repeat_gap_ms is None else repeat_gap_ms
        self._release_timer.setInterval(self.repeat_gap_ms)
        self._release_timer.timeout.connect(self.release)
        self._release_stamp = 0  # the pending key-up's X timestamp (ms)
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        app.installEventFilter(self)
        app.applicationStateChanged.connect(self._on_app_state)

    @property
    def held(self) -> bool:
        """The key is down as far as the app is concerned (pressed, not yet released)."""
        return self._held

    @held.setter
    def held(self, value: bool) -> None:
        # Setting it False ends the hold without `released` (the window does this when
        # the connection goes): a key-up still pending must not fire into a later hold.
        if not value:
            self._release_timer.stop()
        self._held = value

    @property
    def release_pending(self) -> bool:
        """A key-up arrived and the hold ends unless the key is pressed again first."""
        return self._release_timer.isActive()

    def detach(self) -> None:
        """Stop watching the application (the window is going away)."""
        self.release()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.removeEventFilter(self)
            app.applicationStateChanged.disconnect(self._on_app_state)

    def set_key(self, key_text: str) -> None:
        self.release()
        self._key = key_from_text(key_text)
        self.key_text = key_text

    def release(self) -> None:
        """End a held press now (focus lost, window hidden, key changed, or the key-up's
        wait for an auto-repeat press is over)."""
        self._release_timer.stop()
        if self._held:
            self._held = False
            self.released.emit()

    def _typing_in(self, obj: QObject) -> bool:
        return isinstance(obj, QLineEdit | QTextEdit | QAbstractSpinBox | QComboBox)

    def _mine(self, obj: QObject) -> bool:
        return isinstance(obj, QWidget) and obj.window() is self._window

    def _on_press(self, event: QKeyEvent) -> None:
        if self.release_pending:
            stamp = event.timestamp()
            if event.isAutoRepeat() or _same_moment(self._release_stamp, stamp, self.repeat_gap_ms):
                self._release_timer.stop()  # the key-up was half of a repeat: still held
                return
            # A real key-up and a new press, both handled late (the loop was busy): two
            # holds, so the first one ends before the second begins.
            self.release()
        if not event.isAutoRepeat() and not self._held:
            self._held = True
            self.pressed.emit()

    def _on_release(self, event: QKeyEvent) -> None:
        if event.isAutoRepeat() or not self._held or self.release_pending:
            return
        if self.repeat_gap_ms <= 0:
            self.release()  # repeats come without releases here: this one is real
            return
        self._release_stamp = event.timestamp()
        self._release_timer.start()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self._mine(obj):
            assert isinstance(event, QKeyEvent)
            if event.key() != self._key or (self._typing_in(obj) and not self._held):
                return False
            if kind == QEvent.Type.KeyPress:
                self._on_press(event)
            else:
                self._on_release(event)
            return True  # swallow repeats too: they would click focused buttons
        if kind == QEvent.Type.WindowDeactivate and obj is self._window:
            self.release()
        return False

    def _on_app_state(self, state: Qt.ApplicationState) -> None:
        if state != Qt.ApplicationState.ApplicationActive:
            self.release()
