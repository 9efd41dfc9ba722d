"""The push-to-talk key filter fed synthetic key events, the way X11 delivers a held key
under load when the server will not send repeats without releases (the key then waits
REPEAT_GAP_MS after a key-up): auto-repeat pairs that Qt did not flag arrive as a
real-looking KeyRelease and KeyPress with the same (or nearly the same) timestamp. And
the way other platforms, and X11 with detectable auto-repeat, deliver it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QPushButton, QVBoxLayout, QWidget

from emodesk.ui.ptt import REPEAT_GAP_MS, PushToTalkKey

Press = QEvent.Type.KeyPress
Release = QEvent.Type.KeyRelease


class Window(QWidget):
    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.button = QPushButton("a focused button")
        self.field = QLineEdit()
        layout.addWidget(self.button)
        layout.addWidget(self.field)
        self.clicks = 0
        self.detached = False
        self.button.clicked.connect(self._clicked)
        self.ptt = PushToTalkKey(self, repeat_gap_ms=REPEAT_GAP_MS)
        self.turns: list[str] = []
        self.ptt.pressed.connect(lambda: self.turns.append("pressed"))
        self.ptt.released.connect(lambda: self.turns.append("released"))

    def _clicked(self) -> None:
        self.clicks += 1

    def key(
        self,
        kind: QEvent.Type,
        stamp: int,
        *,
        repeat: bool = False,
        key: Qt.Key = Qt.Key.Key_Space,
        to: QWidget | None = None,
    ) -> None:
        """Send a key event (X timestamp `stamp` ms) as Qt would, to the focused button."""
        text = " " if key == Qt.Key.Key_Space else ""
        event = QKeyEvent(kind, key, Qt.KeyboardModifier.NoModifier, text, repeat)
        event.setTimestamp(stamp)
        QApplication.sendEvent(to or self.button, event)

    def repeat_pair(self, stamp: int, *, press_after_ms: int = 0) -> None:
        """One auto-repeat of a held key as X sends it, not flagged by Qt."""
        self.key(Release, stamp)
        self.key(Press, stamp + press_after_ms)


def state(win: Window) -> str:
    """ "up", "held", or "release pending" (held, a key-up waiting for the window)."""
    if win.ptt.release_pending:
        assert win.ptt.held
        return "release pending"
    return "held" if win.ptt.held else "up"


@pytest.fixture
def win(qapp: QApplication) -> Iterator[Window]:
    window = Window()
    yield window
    if not window.detached:
        window.ptt.detach()
    window.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def wait_released(qtbot: Any, win: Window) -> float:
    """Wait for `released`; how long it took (s)."""
    start = time.monotonic()
    with qtbot.waitSignal(win.ptt.released, timeout=2000):
        pass
    return time.monotonic() - start


def test_unflagged_repeat_pairs_during_a_hold_are_one_turn(qtbot: Any, win: Window) -> None:
    win.key(Press, 10_000)
    assert win.turns == ["pressed"] and state(win) == "held"
    stamp = 10_660  # X's default repeat delay, then every 40 ms
    for n in range(40):
        if n % 3 == 0:  # some pairs Qt did flag, as it does when both halves are queued
            win.key(Release, stamp, repeat=True)
            win.key(Press, stamp, repeat=True)
        else:  # same timestamp, or 1 ms apart
            win.repeat_pair(stamp, press_after_ms=n % 2)
        assert win.turns == ["pressed"]
        assert state(win) == "held"  # and no key-up waiting that could fire
        stamp += 40

    released_at = time.monotonic()
    win.key(Release, stamp)  # the real key-up
    assert win.turns == ["pressed"] and state(win) == "release pending"  # not at once
    with qtbot.waitSignal(win.ptt.released, timeout=2000):
        pass
    assert time.monotonic() - released_at >= (REPEAT_GAP_MS - 1) / 1000
    assert win.turns == ["pressed", "released"]
    assert state(win) == "up"
    assert win.clicks == 0  # every Space event was swallowed: the button never clicked


def test_a_release_with_no_press_after_it_ends_the_turn_after_the_window(
    qtbot: Any, win: Window
) -> None:
    win.key(Press, 5_000)
    win.key(Release, 5_300)
    assert win.turns == ["pressed"]
    assert wait_released(qtbot, win) >= (REPEAT_GAP_MS - 1) / 1000
    assert win.turns == ["pressed", "released"]
    # The next press, later, is the next turn.
    win.key(Press, 6_000)
    assert win.turns == ["pressed", "released", "pressed"]


def test_a_press_stamped_well_after_the_release_is_a_new_turn_even_if_handled_at_once(
    win: Window,
) -> None:
    # The loop was busy: a real key-up and a real new press are handled back to back,
    # inside the window; their timestamps tell they are two turns.
    win.key(Press, 1_000)
    win.key(Release, 2_000)
    win.key(Press, 2_000 + REPEAT_GAP_MS + 40)
    assert win.turns == ["pressed", "released", "pressed"]
    assert state(win) == "held"


def test_a_pair_across_the_x_clock_wrapping_is_still_one_hold(win: Window) -> None:
    win.key(Press, 2**32 - 500)
    win.repeat_pair(2**32 - 1, press_after_ms=2)  # the press is stamped 1 (wrapped)
    assert win.turns == ["pressed"] and state(win) == "held"


def test_release_in_the_window_ends_the_turn_once(qtbot: Any, win: Window) -> None:
    win.key(Press, 1_000)
    win.key(Release, 1_500)
    assert state(win) == "release pending"
    win.ptt.release()  # focus lost, window hidden...
    assert win.turns == ["pressed", "released"]
    assert state(win) == "up"  # the key-up's timer is stopped: it cannot release again
    win.ptt.release()
    assert win.turns == ["pressed", "released"]


def test_window_deactivated_in_the_window_ends_the_turn_once(win: Window) -> None:
    win.key(Press, 1_000)
    win.key(Release, 1_500)
    QApplication.sendEvent(win, QEvent(QEvent.Type.WindowDeactivate))
    assert win.turns == ["pressed", "released"] and state(win) == "up"


def test_detach_in_the_window_ends_the_turn_once(win: Window) -> None:
    win.key(Press, 1_000)
    win.key(Release, 1_500)
    win.ptt.detach()
    win.detached = True
    assert win.turns == ["pressed", "released"] and state(win) == "up"


def test_key_change_mid_hold_ends_it_once_and_the_new_key_works(win: Window) -> None:
    win.key(Press, 1_000)
    win.repeat_pair(1_660)
    win.ptt.set_key("F8")
    assert win.turns == ["pressed", "released"]
    # Space is an ordinary key now: not swallowed (it clicks the button), no turn.
    win.key(Press, 1_700)
    win.key(Release, 1_750)
    assert win.clicks == 1
    assert win.turns == ["pressed", "released"]
    win.key(Press, 2_000, key=Qt.Key.Key_F8)
    win.repeat_pair(2_660)  # Space, ignored
    assert win.turns == ["pressed", "released", "pressed"]


def test_key_change_while_a_release_is_pending_releases_once(win: Window) -> None:
    win.key(Press, 1_000)
    win.key(Release, 1_500)
    win.ptt.set_key("F8")
    assert win.turns == ["pressed", "released"] and state(win) == "up"


def test_never_two_presses_for_one_hold(win: Window) -> None:
    win.key(Press, 1_000)
    win.key(Press, 1_000)  # a duplicate press, not flagged
    win.key(Press, 1_040, repeat=True)
    assert win.turns == ["pressed"]


def test_hold_ended_without_a_signal_drops_a_pending_key_up(qtbot: Any, win: Window) -> None:
    # The window drops the hold itself (`held = False`) when the connection goes; a
    # key-up still waiting must not end the next hold.
    win.key(Press, 1_000)
    win.key(Release, 1_500)
    win.ptt.held = False
    assert state(win) == "up"
    win.key(Press, 1_500 + REPEAT_GAP_MS + 500)
    assert win.turns == ["pressed", "pressed"] and state(win) == "held"


def test_auto_repeat_flagged_release_and_press_are_swallowed(win: Window) -> None:
    win.key(Press, 1_000)
    win.key(Release, 1_660, repeat=True)
    win.key(Press, 1_660, repeat=True)
    assert win.turns == ["pressed"] and state(win) == "held"
    assert win.clicks == 0


def test_space_in_a_text_field_types(win: Window) -> None:
    win.key(Press, 1_000, to=win.field)
    win.key(Release, 1_050, to=win.field)
    assert win.field.text() == " "
    assert win.turns == []


def test_where_repeats_come_without_releases_a_key_up_ends_the_turn_at_once(
    qapp: QApplication,
) -> None:
    window = QWidget()
    ptt = PushToTalkKey(window)  # offscreen: no X server to wait for
    turns: list[str] = []
    ptt.pressed.connect(lambda: turns.append("pressed"))
    ptt.released.connect(lambda: turns.append("released"))
    try:
        assert ptt.repeat_gap_ms == 0
        no_mod = Qt.KeyboardModifier.NoModifier
        for _ in range(4):  # a held key's repeats as X sends them then: presses alone
            QApplication.sendEvent(window, QKeyEvent(Press, Qt.Key.Key_Space, no_mod, " "))
            assert turns == ["pressed"]
        QApplication.sendEvent(window, QKeyEvent(Release, Qt.Key.Key_Space, no_mod, " "))
        assert turns == ["pressed", "released"] and not ptt.release_pending
    finally:
        ptt.detach()
        window.deleteLater()
