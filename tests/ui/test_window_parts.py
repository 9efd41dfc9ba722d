"""The window's parts as data and on screen: the notice table covers every kind and shows
each as it says; the reconnect countdown runs from `StateChanged.retry_in_s`; refusals
are told apart by `Intent`; the tutor's topic shows in the status bar."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PySide6.QtWidgets import QStatusBar

from emodesk.conversation.api import (
    ConversationState,
    Intent,
    IntentRefused,
    Notice,
    NoticeKind,
    SettingsChanged,
    TopicChanged,
)
from emodesk.core.profiles import EscalationRemedy
from emodesk.ui.main_window import MainWindow
from emodesk.ui.window.notices import NOTICES, REMEDIES
from emodesk.ui.window.status import StatusLine
from tests.support.qt import settle
from tests.ui.fakes import FakeController

S = ConversationState


def connect(window: MainWindow, loop: asyncio.AbstractEventLoop) -> None:
    window.connect_action.trigger()
    settle(loop, lambda: window.state is S.READY)


def test_every_notice_kind_and_every_escalation_remedy_has_an_entry() -> None:
    assert set(NOTICES) == set(NoticeKind)
    assert set(REMEDIES) == set(EscalationRemedy)
    for kind, view in NOTICES.items():
        assert kind not in view.clears, kind
        if view.severity is None:  # a status message: no button to show
            assert view.button is None and not view.escalation, kind


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_each_notice_kind_shows_as_its_entry_says(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop, kind: NoticeKind
) -> None:
    view = NOTICES[kind]
    if view.escalation:  # shown only with consent
        window.open_consent_dialog().accept_button.click()  # type: ignore[union-attr]
        settle(qloop, lambda: fake.consent)
    for cleared in view.clears:
        window.banners.show_banner(cleared, "error", "an earlier trouble")
    window.statusBar().clearMessage()

    fake.emit(Notice(kind, "the message {0}"))  # braces in a message are kept as they are

    for cleared in view.clears:
        assert cleared not in window.banners.banners, cleared
    if view.severity is None:
        assert kind not in window.banners.banners
        shown = window.statusBar().currentMessage()
        assert shown == view.text.format(message="the message {0}")
        return
    banner = window.banners.banners[kind]
    assert banner.level == view.severity
    assert "the message {0}" in banner.message.text()
    has_button = view.button is not None or view.escalation
    assert (banner.action_button is not None) == has_button


def test_an_escalation_without_consent_shows_nothing(
    window: MainWindow, fake: FakeController
) -> None:
    assert not window.consent
    fake.emit(Notice(NoticeKind.ESCALATION, "three negative turns", "Offer a human agent"))
    assert NoticeKind.ESCALATION not in window.banners.banners


def test_a_notices_own_action_text_labels_its_button_and_the_default_otherwise(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    fake.emit(Notice(NoticeKind.STORAGE, "the disk is full"))
    button = window.banners.banners[NoticeKind.STORAGE].action_button
    assert button is not None and button.text() == "Open settings…"
    button.click()
    dialog = window.settings_dialog
    assert dialog is not None and dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Privacy"

    connect(window, qloop)
    fake.set_state(S.ERROR)
    fake.emit(Notice(NoticeKind.CONNECTION_FAILED, "refused", action="Connect again"))
    button = window.banners.banners[NoticeKind.CONNECTION_FAILED].action_button
    assert button is not None and button.text() == "Connect again"
    button.click()
    settle(qloop, lambda: [c for c, _ in fake.calls].count("connect") == 2)
    assert NoticeKind.CONNECTION_FAILED not in window.banners.banners


def test_the_reconnect_countdown_runs_from_retry_in_s(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop, qtbot: Any
) -> None:
    connect(window, qloop)
    # The detail is for people: the window no longer reads numbers out of it.
    fake.set_state(S.RECONNECTING, "dropped; attempt 1, next in 9.0 s", retry_in_s=1.6)
    assert "Reconnecting in 2 s" in window.state_label.text()
    qtbot.waitUntil(lambda: "Reconnecting in 1 s" in window.state_label.text(), timeout=3000)

    fake.set_state(S.READY)
    fake.set_state(S.RECONNECTING, "dropped; attempt 1, next in 4.0 s")  # no wait known
    text = window.state_label.text()
    assert text.endswith("Reconnecting") and " in " not in text


def test_refusals_are_told_apart_by_intent(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    connect(window, qloop)
    window.voice_actions["Kore"].setChecked(True)  # as a click does before it is refused
    fake.emit(IntentRefused(Intent.CHANGE_VOICE, "the connection is being restored"))
    assert window.voice_actions["Puck"].isChecked()  # back to the voice in use
    assert window.statusBar().currentMessage() == ("Not changed: the connection is being restored")
    window.statusBar().clearMessage()
    fake.emit(IntentRefused(Intent.PUSH_TO_TALK_UP, "push-to-talk is not held"))
    assert window.statusBar().currentMessage() == ""  # a stray release is nobody's news
    fake.emit(IntentRefused(Intent.SEND_TEXT, "the text is empty"))
    assert window.statusBar().currentMessage() == "the text is empty"
    fake.emit(IntentRefused(Intent.EXPORT, "export failed: disk full"))
    box = window.message_box
    assert box is not None and box.isVisible() and box.text() == "export failed: disk full"
    assert window.last_refusal == IntentRefused(Intent.EXPORT, "export failed: disk full")


def test_the_status_line_counts_down_to_the_next_try(qtbot: Any) -> None:
    bar = QStatusBar()
    qtbot.addWidget(bar)
    now = [100.0]
    line = StatusLine(bar, "a-model", clock=lambda: now[0])
    assert line.state_label.text().endswith("Disconnected")
    line.show_state(S.RECONNECTING, 4.0)
    assert line.state_label.text().endswith("Reconnecting in 4 s")
    assert not line.tick()  # nothing to redraw
    now[0] += 1.6
    assert line.tick() and line.state_label.text().endswith("Reconnecting in 2 s")
    now[0] += 10
    assert line.tick() and line.state_label.text().endswith("Reconnecting in 0 s")
    line.show_state(S.READY)
    assert line.state_label.text().endswith("Connected") and not line.tick()
    line.show_state(S.RECONNECTING)  # no wait known: no count
    assert line.state_label.text().endswith("Reconnecting") and not line.tick()


def test_a_turn_with_no_latency_figure_clears_the_last_one(qtbot: Any) -> None:
    bar = QStatusBar()
    qtbot.addWidget(bar)
    line = StatusLine(bar, "a-model")
    line.show_latency(0.142)
    assert line.latency_label.text() == "Last turn: 142 ms"
    line.show_latency(None)  # a hands-free turn: no key-up to measure from
    assert line.latency_label.text() == ""


def test_the_first_window_fits_the_screens_available_area(window: MainWindow) -> None:
    """No stored geometry (a first launch): frame and all inside what the screen offers,
    so the status bar is on screen (it was below the edge at 1280x800)."""
    screen = window.screen()
    assert screen is not None
    area, frame = screen.availableGeometry(), window.frameGeometry()
    assert area.top() <= frame.top() and frame.bottom() <= area.bottom(), (area, frame)
    if window.minimumSizeHint().width() <= area.width():  # the layout's own floor
        assert area.left() <= frame.left() and frame.right() <= area.right(), (area, frame)
    assert window.statusBar().isVisible()
    status = window.statusBar()
    bottom_left = status.mapToGlobal(status.rect().bottomLeft())
    assert area.contains(bottom_left), (area, bottom_left)


def test_a_large_screen_gets_the_full_first_size(qtbot: Any, store: Any) -> None:
    from emodesk.ui.main_window import FIRST_SIZE
    from tests.support.qt import dispose, make_window

    win = make_window(store)
    try:
        area = win.screen().availableGeometry()
        expected_w = min(FIRST_SIZE[0], area.width() - 16)
        assert win.width() == expected_w or win.width() == win.minimumWidth()
    finally:
        dispose(win)


def test_the_switching_message_goes_when_the_new_connection_is_ready(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    connect(window, qloop)
    window.voice_actions["Kore"].trigger()
    assert "Switching the voice to Kore" in window.statusBar().currentMessage()
    settle(qloop, lambda: ("change_voice", "Kore") in fake.calls)
    fake.set_state(S.CONNECTING, "applying voice Kore")
    assert "Switching the voice to Kore" in window.statusBar().currentMessage()
    fake.set_state(S.READY, "voice Kore applied")
    assert window.statusBar().currentMessage() == ""  # not 3-5 s later


def test_the_tutors_current_topic_shows_in_the_status_bar(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    connect(window, qloop)
    topic = window.status_line.topic_label
    assert topic.isHidden()
    fake.emit(TopicChanged("Cells", "01-cells.md"))
    assert topic.text() == "Topic: Cells" and not topic.isHidden()
    fake.emit(TopicChanged("DNA", "02-dna.md"))
    assert topic.text() == "Topic: DNA"
    fake.emit(SettingsChanged("Puck", "tutor", False, False))
    assert topic.text() == "Topic: DNA"  # still the lesson's
    fake.emit(SettingsChanged("Puck", "support", False, False))
    assert topic.isHidden()


def test_audio_gaps_show_in_the_status_bar_once_there_are_any(qtbot: Any) -> None:
    bar = QStatusBar()
    qtbot.addWidget(bar)
    line = StatusLine(bar, "a-model")
    line.show_audio_gaps(0)
    assert line.gaps_label.isHidden()
    line.show_audio_gaps(3)
    assert not line.gaps_label.isHidden() and line.gaps_label.text() == "Audio gaps: 3"
