"""The real window, wired by the real composition root (`emodesk.app.Backend`) to the real
controller, the real google-genai SDK over TLS and the in-process emulator, with the
sqlite store in a temp dir. Only the sound card is replaced: a scripted microphone that
speaks espeak-ng lines and a simulated speaker (`ScriptedAudio`).

Every wait is on a condition with a bound (`settle`, `run`); nothing sleeps and hopes."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from emodesk.app import Backend, BackendOptions
from emodesk.conversation.api import ConversationState
from emodesk.core.export import CSV_COLUMNS
from emodesk.live.emulator.server import ConnectionRecord
from emodesk.live.emulator.wire import normalize_keys
from emodesk.ui.main_window import SYNTHETIC_TEXT, MainWindow
from emodesk.ui.settings_store import SettingsStore, open_qsettings
from tests.support.app_rig import Rig, answer_consent, start_rig, stop_rig
from tests.support.pulse import PulseStack, missing_binaries
from tests.support.qt import dispose, make_window, run, until
from tests.support.system_tools import missing_message
from tests.ui.scripted_audio import DEFAULT_LINES, ScriptedAudio, utterances

S = ConversationState
pytestmark = pytest.mark.timeout(90)
EMOTION_TOOL = "report_user_emotion"


def space(window: MainWindow, kind: QEvent.Type, repeat: bool = False) -> None:
    """A Space key event as the platform delivers it: to the focused widget."""
    target = QApplication.focusWidget() or window
    event = QKeyEvent(kind, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " ", repeat)
    QApplication.sendEvent(target, event)


def wire(connection: ConnectionRecord) -> list[str]:
    """What the client sent on one connection, as message kinds (runs of audio as one)."""
    kinds: list[str] = []
    for message in connection.received:
        body = normalize_keys(message)
        kind = next(iter(body))
        if kind == "realtime_input":
            kind = next(iter(body[kind]))
        if kind in ("audio", "media_chunks"):
            kind = "audio"
            if kinds and kinds[-1] == "audio":
                continue
        kinds.append(kind)
    return kinds


def declares_emotion_tool(connection: ConnectionRecord) -> bool:
    return EMOTION_TOOL in json.dumps(connection.setup)


def voice_of(connection: ConnectionRecord) -> str:
    setup = normalize_keys(connection.setup or {})
    speech = setup["generation_config"]["speech_config"]
    return str(speech["voice_config"]["prebuilt_voice_config"]["voice_name"])


@pytest.fixture
def rig(window: MainWindow, qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[Rig]:
    started = start_rig(window, qloop, tmp_path / "history.db")
    try:
        yield started
    finally:
        stop_rig(started)


# ---------------------------------------------------------------------------- tests


def test_the_offline_demo_says_so(rig: Rig) -> None:
    rig.connect()
    assert rig.window.synthetic_label.isVisible()
    assert rig.window.synthetic_label.text() == SYNTHETIC_TEXT
    assert "offline demo" in rig.window.banners.messages()["offline"].lower()
    assert rig.emulator.connections[0].api_key == "offline-demo"  # no real key is sent


def test_voice_switch_from_the_toolbar_reconnects_with_the_new_voice(rig: Rig) -> None:
    rig.connect()
    assert voice_of(rig.emulator.connections[0]) == "Puck"
    rig.speak_by_button()
    rig.window.voice_actions["Kore"].trigger()
    assert "Switching the voice to Kore" in rig.window.statusBar().currentMessage()
    rig.settle(lambda: len(rig.emulator.connections) == 2 and rig.window.state is S.READY)
    second = rig.emulator.connections[1]
    assert voice_of(second) == "Kore"
    # The conversation continues: a fresh session (so the voice surely changes) that
    # starts from the transcript so far.
    assert second.resumed_from is None
    assert any("client_content" in str(message) for message in second.received[:3])
    assert rig.window.voice_actions["Kore"].isChecked()
    assert rig.window.settings.voice == "Kore"  # saved for the next start
    # The next reply comes in the new voice, on the new connection.
    rig.speak_by_button()
    assert "in the voice Kore" in second.turns[-1].reply_text
    assert "in the voice Kore" in rig.window.transcript.model.plain_text()


def test_push_to_talk_by_button_and_by_key_reaches_the_wire(rig: Rig) -> None:
    rig.connect()
    rig.speak_by_button()
    assert wire(rig.emulator.connections[0]) == [
        "setup", "activity_start", "audio", "activity_end",
    ]  # fmt: skip

    def key_down() -> None:
        space(rig.window, QEvent.Type.KeyPress)
        for _ in range(3):  # auto-repeat while held: ignored
            space(rig.window, QEvent.Type.KeyRelease, repeat=True)
            space(rig.window, QEvent.Type.KeyPress, repeat=True)

    rig.speak(key_down, lambda: space(rig.window, QEvent.Type.KeyRelease))
    assert wire(rig.emulator.connections[0])[4:] == ["activity_start", "audio", "activity_end"]
    turns = rig.emulator.connections[0].turns
    assert len(turns) == 2 and all(t.audio_seconds > 1.0 for t in turns)
    assert "Last turn:" in rig.window.latency_label.text()
    # The transcript panel has both sides of both turns.
    text = rig.window.transcript.model.plain_text()
    assert "Synthetic reply 1" in text and "Synthetic reply 2" in text
    assert "s of speech" in text

    # Focus lost while the key is held: the turn still ends on the wire.
    rig.in_loop(lambda: space(rig.window, QEvent.Type.KeyPress))
    rig.settle(lambda: rig.window.state is S.LISTENING)
    rig.in_loop(lambda: QApplication.sendEvent(rig.window, QEvent(QEvent.Type.WindowDeactivate)))
    rig.settle(lambda: wire(rig.emulator.connections[0])[-1] == "activity_end")


def test_declined_consent_leaves_no_emotion_anywhere(rig: Rig, tmp_path: Path) -> None:
    answer_consent(rig.window, granted=False)
    rig.connect()
    rig.speak_by_button()
    rig.speak_by_button()
    connection = rig.emulator.connections[0]
    assert not declares_emotion_tool(connection)
    assert all(turn.tool_call_id is None for turn in connection.turns)
    assert "tool_response" not in wire(connection)
    assert rig.window.timeline.data.readings == []
    assert rig.window.consent_action.text() == "Emotion: off"
    session = rig.window.session_id
    assert session is not None
    assert rig.backend.store.readings(session) == []
    # Everything else works: replies, transcript, typed turns.
    rig.window.transcript.input.setText("typed question")
    rig.window.transcript.send_button.click()
    rig.settle(lambda: "typed question" in rig.window.transcript.model.plain_text())
    rig.settle(lambda: rig.completed_turns() == 3 and rig.window.state is S.READY)


def test_accepted_consent_puts_both_sources_on_the_timeline(rig: Rig) -> None:
    answer_consent(rig.window, granted=True)
    rig.connect()
    assert declares_emotion_tool(rig.emulator.connections[0])
    rig.speak_by_button()
    rig.settle(
        lambda: {r.source for r in rig.window.timeline.data.readings} >= {"model", "acoustic"}
    )
    rig.window.clock.tick()
    readings = rig.window.timeline.data.readings
    assert {r.turn for r in readings} == {1}
    assert all(r.emotion in ("happy", "sad", "angry", "anxious", "neutral") for r in readings)
    assert rig.window.consent_action.text() == "Emotion: on"
    assert rig.emulator.connections[0].turns[0].tool_response is not None
    session = rig.window.session_id
    assert session is not None
    rig.settle(lambda: len(rig.backend.store.readings(session)) == len(readings))


def test_csv_export_of_a_finished_session(rig: Rig, tmp_path: Path) -> None:
    answer_consent(rig.window, granted=True)
    rig.connect()
    rig.speak_by_button()
    rig.speak_by_button()
    rig.settle(lambda: len(rig.window.timeline.data.readings) == 4)
    session = rig.window.session_id
    rig.window.connect_action.trigger()  # disconnect: the session is finished
    rig.settle(lambda: rig.window.state is S.OFFLINE)

    rig.window.export_csv_action.trigger()
    dialog = rig.window.export_dialog
    assert dialog is not None and dialog.isVisible()
    target = tmp_path / "timeline.csv"
    dialog.selectFile(str(target))
    dialog.accept()
    rig.settle(lambda: "exported" in rig.window.statusBar().currentMessage())
    with target.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(CSV_COLUMNS)
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert len(body) == 4
    assert {row["session_id"] for row in body} == {session}
    assert sorted((row["turn"], row["source"]) for row in body) == [
        ("1", "acoustic"), ("1", "model"), ("2", "acoustic"), ("2", "model"),
    ]  # fmt: skip
    assert all(row["utc"].endswith("Z") for row in body)


def test_settings_persist_across_a_restart(
    window: MainWindow, qloop: asyncio.AbstractEventLoop, tmp_path: Path, settings_path: Path
) -> None:
    history = tmp_path / "history.db"
    first = start_rig(window, qloop, history)
    try:
        answer_consent(window, granted=True)
        first.connect()
        window.voice_actions["Kore"].trigger()
        first.settle(lambda: len(first.emulator.connections) == 2 and window.state is S.READY)
        dialog = window.open_settings()
        dialog.language.setText("German")
        dialog.ptt_key.setKeySequence("F8")
        dialog._apply()
        dialog.close()
    finally:
        stop_rig(first)
    window.close()

    # A new window and backend from the same settings file: everything comes back.
    restarted = make_window(SettingsStore(open_qsettings(settings_path)))
    restarted.show()
    second = start_rig(restarted, qloop, history)
    try:
        assert not restarted.consent_needed()
        assert restarted.consent_action.text() == "Emotion: on"
        assert restarted.voice_actions["Kore"].isChecked()
        assert restarted.ptt_key.key_text == "F8"
        second.connect()
        setup = second.emulator.connections[0]
        assert voice_of(setup) == "Kore"
        assert declares_emotion_tool(setup)
        assert "German" in json.dumps(setup.setup)
        # The restored key talks; Space no longer does.
        f8 = QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_F8, Qt.KeyboardModifier.NoModifier)
        second.in_loop(lambda: QApplication.sendEvent(restarted, f8))
        second.settle(lambda: restarted.state is S.LISTENING)
    finally:
        stop_rig(second)
        dispose(restarted)


def test_a_model_change_reconnects_with_a_new_session(rig: Rig) -> None:
    rig.connect()
    first_session = rig.window.session_id
    dialog = rig.window.open_settings()
    other = next(m for m in rig.window.services.models if m != rig.window.settings.model)
    dialog.model.setCurrentIndex(dialog.model.findData(other))
    rig.in_loop(dialog._apply)
    assert "reconnecting" in rig.window.statusBar().currentMessage()
    rig.settle(lambda: len(rig.emulator.connections) == 2 and rig.window.state is S.READY)
    assert rig.emulator.connections[1].setup["model"] == f"models/{other}"  # type: ignore[index]
    assert rig.window.session_id not in (None, first_session)
    assert rig.audios[0].closed and not rig.audio.closed  # the old audio port was closed
    assert rig.window.model_label.text() == other
    rig.speak_by_button()  # the new stack talks


def test_closing_the_window_shuts_everything_down(
    window: MainWindow, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    """`run_window` is the app's main coroutine: closing the window ends it, with the
    controller closed, the audio port closed, the store closed and the emulator stopped."""
    from emodesk.app import run_window

    rig = Rig(window, Backend(window, BackendOptions()), qloop, [])
    mic, rig.ends = utterances(*DEFAULT_LINES)

    def make_audio(_loop: asyncio.AbstractEventLoop, _settings: Any) -> ScriptedAudio:
        rig.audios.append(ScriptedAudio(mic))
        return rig.audios[-1]

    rig.backend.options = BackendOptions(
        offline=True, history_path=str(tmp_path / "h.db"), audio_factory=make_audio,
        emulator_speed=50.0, emulator_record=True, auto_connect=True,
    )  # fmt: skip

    async def session() -> None:
        main = asyncio.ensure_future(run_window(window, rig.backend))
        await until(lambda: window.state is S.READY, 20.0)
        assert window.consent_dialog is not None and window.consent_dialog.isVisible()
        window.consent_dialog.decline_button.click()
        window.close()
        await asyncio.wait_for(main, 15.0)

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)  # as `emodesk.app.run` sets it
    try:
        run(qloop, session(), 30.0)
    finally:
        app.setQuitOnLastWindowClosed(True)
    assert rig.audio.closed
    assert not Path(rig.emulator.ca_file).exists()  # stopped: its certificate is gone
    assert rig.backend.controller.state is S.OFFLINE  # type: ignore[union-attr]
    with pytest.raises(Exception, match="closed"):
        rig.backend.store.sessions()  # type: ignore[union-attr]


@pytest.mark.audio_stack
def test_the_app_process_exits_cleanly_when_its_window_closes(tmp_path: Path) -> None:
    """`emodesk` as a user starts it (offline demo, the real audio engine on a private
    PulseAudio server): SIGTERM closes the window, and the process ends with status 0
    once everything is shut down, without hanging."""
    if missing_binaries():  # never a skip: a green run means the real stack ran
        pytest.fail(missing_message(missing_binaries()))
    with PulseStack() as pulse:
        log_dir = tmp_path / "state"
        env = {
            **pulse.env(), "QT_QPA_PLATFORM": "offscreen",
            "EMODESK_SETTINGS_FILE": str(tmp_path / "settings.ini"),
            "XDG_STATE_HOME": str(log_dir), "XDG_DATA_HOME": str(tmp_path / "data"),
        }  # fmt: skip
        env.pop("GEMINI_API_KEY", None)
        app = subprocess.Popen(
            [sys.executable, "-m", "emodesk"], env=env, cwd=Path(__file__).parents[2],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        history = tmp_path / "data" / "emodesk"
        try:
            # Started: the backend has opened the history (it does so after the window).
            deadline = 30.0
            start = time.monotonic()
            while not any(history.glob("history.*")) and time.monotonic() - start < deadline:
                if app.poll() is not None:
                    break
                time.sleep(0.05)
            assert app.poll() is None, app.communicate()[0][-2000:]
            assert any(history.glob("history.*")), "the backend did not start"
            app.send_signal(signal.SIGTERM)
            output, _ = app.communicate(timeout=20)
        finally:
            if app.poll() is None:
                app.kill()
                app.wait()
    assert app.returncode == 0, output[-2000:]
    assert "Traceback" not in output
    assert os.path.isdir(log_dir)
