"""The real window against a fake controller: what each control sends, and what each
event shows."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from emodesk.conversation.api import ConversationState, Notice, NoticeKind, StateChanged
from emodesk.ui.main_window import ANOTHER_APPROACH, SYNTHETIC_TEXT, MainWindow
from emodesk.ui.settings_store import SettingsStore
from tests.support.qt import run, settle
from tests.ui.fakes import FakeController
from tests.ui.test_models import reading

S = ConversationState


def connect(window: MainWindow, fake: FakeController, loop: asyncio.AbstractEventLoop) -> None:
    window.connect_action.trigger()
    settle(loop, lambda: window.state is S.READY)


def key(window: MainWindow, kind: QEvent.Type, repeat: bool = False) -> None:
    event = QKeyEvent(kind, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " ", repeat)
    QApplication.sendEvent(window.ptt_button, event)


def test_voice_buttons_switch_the_voice_and_say_so_while_connected(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    connect(window, fake, qloop)
    assert window.voice_actions["Puck"].isChecked()
    window.voice_actions["Kore"].trigger()
    assert "Switching the voice to Kore" in window.statusBar().currentMessage()
    settle(qloop, lambda: ("change_voice", "Kore") in fake.calls)
    settle(qloop, lambda: window.voice == "Kore")
    assert window.voice_actions["Kore"].isChecked()
    # A voice from the menu: checked there, and the menu button names it.
    window.voice_actions["Charon"].trigger()
    settle(qloop, lambda: window.voice == "Charon")
    assert window.voice_actions["Charon"].isChecked()
    assert window.more_voices.text().startswith("Charon")
    assert window.settings.voice == "Charon"  # saved for the next start


def test_push_to_talk_by_button(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    connect(window, fake, qloop)
    assert window.ptt_button.isEnabled()
    window.ptt_button.pressed.emit()
    assert fake.state is S.LISTENING
    assert "release to send" in window.ptt_button.text()
    window.ptt_button.released.emit()
    assert [c for c, _ in fake.calls if c.startswith("ptt")] == ["ptt_down", "ptt_up"]


def test_push_to_talk_key_ignores_auto_repeat_and_always_releases(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop, qtbot: Any
) -> None:
    connect(window, fake, qloop)
    key(window, QEvent.Type.KeyPress)
    for _ in range(5):  # a held key repeats: press/release pairs flagged auto-repeat
        key(window, QEvent.Type.KeyRelease, repeat=True)
        key(window, QEvent.Type.KeyPress, repeat=True)
    assert [c for c, _ in fake.calls if c.startswith("ptt")] == ["ptt_down"]
    # The key-up ends the turn (offscreen, whose repeats come flagged: at once).
    with qtbot.waitSignal(window.ptt_key.released, timeout=2000):
        key(window, QEvent.Type.KeyRelease)
    assert [c for c, _ in fake.calls if c.startswith("ptt")] == ["ptt_down", "ptt_up"]

    # Focus lost while held: the release never arrives, the turn still ends.
    fake.set_state(S.READY)
    key(window, QEvent.Type.KeyPress)
    QApplication.sendEvent(window, QEvent(QEvent.Type.WindowDeactivate))
    assert [c for c, _ in fake.calls if c.startswith("ptt")][-2:] == ["ptt_down", "ptt_up"]


def test_space_in_the_text_box_types_instead_of_talking(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop, qtbot: Any
) -> None:
    connect(window, fake, qloop)
    window.activateWindow()
    window.transcript.input.setFocus()
    qtbot.keyClicks(window.transcript.input, "hi there")
    assert window.transcript.input.text() == "hi there"
    assert not any(c.startswith("ptt") for c, _ in fake.calls)
    qtbot.keyClick(window.transcript.input, Qt.Key.Key_Return)
    settle(qloop, lambda: ("send_text", "hi there") in fake.calls)


def test_declining_consent_keeps_emotion_off_everywhere(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    assert window.consent_needed()
    dialog = window.open_consent_dialog()
    assert dialog.isVisible() and "not a diagnosis" in dialog.body.toPlainText()
    dialog.decline_button.click()
    assert not window.consent and window.settings.consent is not None
    assert not window.consent_needed()
    fake.emit(reading(1))
    fake.emit(Notice(NoticeKind.ESCALATION, "three negative turns", "Offer a human agent"))
    window.clock.tick()
    assert window.timeline.data.readings == []
    assert NoticeKind.ESCALATION not in window.banners.banners
    assert window.consent_action.text() == "Emotion: off"


def test_accepting_consent_puts_readings_on_the_timeline(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    dialog = window.open_consent_dialog()
    assert dialog.accept_button is not None
    dialog.accept_button.click()
    settle(qloop, lambda: ("set_consent", True) in fake.calls and fake.consent)
    fake.emit(reading(1, escalate=True, trend="worsening"))
    window.clock.tick()
    assert len(window.timeline.data.readings) == 1
    assert "worsening" in window.timeline.trend_label.text()
    assert window.consent_action.text() == "Emotion: on"
    # Revoke from the toolbar: the dialog now offers it, and the timeline empties.
    window.consent_action.trigger()
    window.consent_dialog.decline_button.click()  # type: ignore[union-attr]
    settle(qloop, lambda: ("set_consent", False) in fake.calls)
    assert window.timeline.data.readings == []


def test_reconnect_countdown_banner_and_its_action(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    connect(window, fake, qloop)
    fake.emit(Notice(NoticeKind.RECONNECTING, "attempt 1, next in 4.0 s"))
    fake.emit(StateChanged(S.RECONNECTING, S.READY, "dropped; attempt 1", retry_in_s=4.0))
    assert "Reconnecting in 4 s" in window.state_label.text()
    banner = window.banners.banners[NoticeKind.RECONNECTING]
    assert banner.action_button is not None
    banner.action_button.click()
    settle(qloop, lambda: [c for c, _ in fake.calls][-2:] == ["disconnect", "connect"])
    assert NoticeKind.RECONNECTING not in window.banners.banners


def test_invalid_key_banner_opens_the_key_settings(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    fake.emit(Notice(NoticeKind.INVALID_KEY, "API key not valid"))
    window.banners.banners[NoticeKind.INVALID_KEY].action_button.click()  # type: ignore[union-attr]
    dialog = window.settings_dialog
    assert dialog is not None and dialog.tabs.tabText(dialog.tabs.currentIndex()) == "API key"
    settle(qloop, dialog.refresh_devices_button.isEnabled)  # its device listing ran


def test_offline_demo_is_labelled(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop
) -> None:
    window.set_offline_demo(True)
    connect(window, fake, qloop)
    assert window.synthetic_label.isVisible()
    assert window.synthetic_label.text() == SYNTHETIC_TEXT
    assert window.add_key_button.isVisible()
    assert "offline" in window.banners.banners


def test_export_to_an_unwritable_path_says_why(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    target = locked / "out.csv"
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: use a missing folder
            target = tmp_path / "missing" / "out.csv"
        ok = run(qloop, window.export_to(str(target), "csv"))
    finally:
        locked.chmod(stat.S_IRWXU)
    assert ok is False
    assert not any(c == "export" for c, _ in fake.calls)
    box = window.message_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert str(target) in box.text()
    box.close()


def test_export_goes_through_the_file_dialog(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    window.export_csv_action.trigger()
    dialog = window.export_dialog
    assert dialog is not None and dialog.isVisible()
    target = tmp_path / "timeline.csv"
    dialog.fileSelected.emit(str(target))
    settle(qloop, lambda: ("export", (str(target), "csv", None)) in fake.calls)
    dialog.close()


def test_settings_and_geometry_persist_across_a_restart(
    window: MainWindow, fake: FakeController, store: SettingsStore, qtbot: Any,
    qloop: asyncio.AbstractEventLoop,
) -> None:  # fmt: skip
    dialog = window.open_settings()
    dialog.language.setText("German")
    dialog.playout_ms.setValue(40)
    dialog.retention_days.setValue(7)
    dialog.noise_gate.setChecked(True)
    dialog.frame_ms.setCurrentIndex(dialog.frame_ms.findData(40))
    dialog.vad_silence.setValue(800)
    values = dialog.values()
    assert (values["noise_gate"], values["normalize"]) == (True, False)
    assert (values["frame_ms"], values["vad_silence_ms"]) == (40, 800)
    from PySide6.QtGui import QKeySequence

    dialog.ptt_key.setKeySequence(QKeySequence("F8"))
    dialog.echo_mode.setCurrentIndex(dialog.echo_mode.findData("full_duplex_aec"))
    dialog.profile.setCurrentIndex(dialog.profile.findData("support"))
    dialog._apply()
    settle(qloop, lambda: ("change_profile", "support") in fake.calls)
    # The hands-free pause goes to the controller's intent, not to a new stack.
    tuning = ("tune_hands_free", (window.settings.vad_sensitivity, 800))
    settle(qloop, lambda: tuning in fake.calls)
    window.resize(1100, 700)
    window.close()

    store.q.sync()
    # A real restart: a new process builds the window from the same settings file.
    probe = (
        "import json, sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from emodesk.ui.settings_store import SettingsStore, open_qsettings\n"
        "from tests.support.qt import make_window, dispose\n"
        "w = make_window(SettingsStore(open_qsettings(sys.argv[1])))\n"
        "s = w.settings\n"
        "print(json.dumps([s.language, s.playout_buffer_ms, s.retention_days,\n"
        "    s.push_to_talk_key, s.echo_mode, s.profile, w.ptt_key.key_text,\n"
        "    w.profile_box.currentData(), w.height()]))\n"
        "dispose(w)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, store.path], capture_output=True, text=True,
        timeout=60, check=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    restored = json.loads(out.stdout.strip().splitlines()[-1])
    # The offscreen screen is small, so Qt clamps the width; the height survives.
    assert restored == ["German", 40, 7, "F8", "full_duplex_aec", "support", "F8", "support", 700]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (NoticeKind.MIC_LOST, "the microphone was unplugged"),
        (NoticeKind.SPEAKER_LOST, "The speaker stopped: no output audio device"),
    ],
)
def test_a_lost_device_banner_opens_the_audio_settings(
    window: MainWindow,
    fake: FakeController,
    qloop: asyncio.AbstractEventLoop,
    kind: NoticeKind,
    message: str,
) -> None:
    fake.emit(Notice(kind, message, action="Choose another device"))
    banner = window.banners.banners[kind]
    assert message in banner.message.text()
    assert banner.action_button.text() == "Choose another device"  # type: ignore[union-attr]
    banner.action_button.click()  # type: ignore[union-attr]
    dialog = window.settings_dialog
    assert dialog is not None and dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Audio"
    settle(qloop, dialog.refresh_devices_button.isEnabled)  # its device listing ran


def test_a_device_back_or_substituted_clears_the_lost_banners_and_says_so(
    window: MainWindow, fake: FakeController
) -> None:
    fake.emit(Notice(NoticeKind.MIC_LOST, "input device 'USB' stopped"))
    fake.emit(Notice(NoticeKind.SPEAKER_LOST, "The speaker stopped: output device stopped"))
    assert set(window.banners.banners) >= {NoticeKind.MIC_LOST, NoticeKind.SPEAKER_LOST}
    fake.emit(Notice(NoticeKind.AUDIO_DEVICE, "input: audio devices reopened"))
    assert NoticeKind.MIC_LOST not in window.banners.banners
    assert NoticeKind.SPEAKER_LOST not in window.banners.banners
    assert window.statusBar().currentMessage() == "Audio input: audio devices reopened"


@pytest.mark.parametrize(
    ("profile", "button", "effect"),
    [
        ("support", "Export for a human agent…", "export dialog"),
        ("tutor", "Ask for another approach", "send_text"),
        ("wellness", "Session report…", "report"),
        ("general", "Got it", "nothing"),
    ],
)
def test_the_escalation_banner_does_what_the_profile_advises(
    window: MainWindow, fake: FakeController, qloop: asyncio.AbstractEventLoop,
    profile: str, button: str, effect: str,
) -> None:  # fmt: skip
    answer = window.open_consent_dialog()
    assert answer.accept_button is not None
    answer.accept_button.click()
    settle(qloop, lambda: fake.consent)
    window.profile = profile
    fake.emit(Notice(NoticeKind.ESCALATION, "three negative turns", "Act"))
    action = window.banners.banners[NoticeKind.ESCALATION].action_button
    assert action is not None and action.text() == button
    action.click()
    if effect == "export dialog":
        assert window.export_dialog is not None and window.export_dialog.isVisible()
    elif effect == "send_text":
        settle(qloop, lambda: ("send_text", ANOTHER_APPROACH) in fake.calls)
    elif effect == "report":
        box = window.message_box
        assert box is not None and box.isVisible() and "Escalations: none" in box.text()
    else:
        assert not [c for c in fake.calls if c[0] in ("send_text", "session_report")]


def test_the_session_report_is_in_the_export_menu_and_says_when_there_is_none(
    window: MainWindow, fake: FakeController
) -> None:
    window.report_action.trigger()
    assert window.message_box is not None and "Escalations" in window.message_box.text()
    fake.report = None
    window.report_action.trigger()
    assert window.message_box is not None and window.message_box.text() == "No session yet."
