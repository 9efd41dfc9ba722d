"""The composition root (`emodesk.app.Backend`) behind the real window: deleting all
data, the history's open report, retention failures, rebuilds on settings changes,
secrets in the log, and what stays off the GUI thread. The real controller, store and
emulator run; only the sound card is scripted (`ScriptedAudio`)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emodesk.app import Backend, BackendOptions
from emodesk.conversation.api import ConversationState, NoticeKind
from emodesk.store import SessionStore, StoreError
from emodesk.ui.errors import setup_logging
from emodesk.ui.main_window import MainWindow
from emodesk.ui.services import Services
from emodesk.ui.settings_dialog import LOADING_DEVICES
from emodesk.ui.settings_store import SettingsStore, open_qsettings
from tests.support.app_rig import Rig, answer_consent, silent_audio, start_rig, stop_rig
from tests.support.qt import run, settle

S = ConversationState
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def rig(window: MainWindow, qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[Rig]:
    started = start_rig(window, qloop, tmp_path / "history.db")
    try:
        yield started
    finally:
        stop_rig(started)


def flush_log() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


# ---------------------------------------------------------------- delete all data


def test_delete_all_data_deletes_consent_too_and_the_session_goes_on_fresh(
    rig: Rig, settings_path: Path
) -> None:
    window, store = rig.window, rig.backend.store
    answer_consent(window, granted=True)
    rig.connect()
    rig.speak_by_button()
    rig.settle(lambda: len(window.timeline.data.readings) == 2)
    old_session = window.session_id
    assert old_session is not None and store.consent_records()

    dialog = window.open_settings("Privacy")
    dialog.delete_button.click()
    assert dialog.confirm is not None and dialog.confirm.isVisible()
    delete = next(b for b in dialog.confirm.buttons() if b.text() == "Delete everything")
    rig.in_loop(delete.click)
    rig.settle(lambda: "deleted" in dialog.delete_status.text())

    # What the dialog promised: history and the saved consent answer are gone.
    assert store.consent_records() == []
    assert old_session not in {s.session_id for s in store.sessions()}
    saved, _ = SettingsStore(open_qsettings(settings_path)).load()
    assert saved.consent is None and window.consent_needed()
    # Emotion is off everywhere, and the deleted session is off the screen.
    assert not window.consent and window.consent_action.text() == "Emotion: off"
    assert not rig.backend.controller.consent
    assert window.timeline.data.readings == []
    assert "Synthetic reply" not in window.transcript.model.plain_text()
    # Connected before, so connected after, on a fresh session that stores its lines.
    rig.settle(lambda: window.state is S.READY and window.session_id not in (None, old_session))
    new_session = window.session_id
    assert new_session is not None
    assert not rig.backend.controller.consent
    rig.speak_by_button()
    rig.settle(lambda: len(store.transcript(new_session)) >= 2)
    assert NoticeKind.STORAGE not in window.banners.messages()
    assert store.readings(new_session) == []  # consent was withdrawn: nothing emotional
    assert "report_user_emotion" not in str(rig.emulator.connections[-1].setup)


# ---------------------------------------------------------------- history at start


def test_a_damaged_history_file_is_reported_in_a_banner(
    window: MainWindow, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    history = tmp_path / "history.db"
    history.write_bytes(b"this is not a database " * 400)
    started = start_rig(window, qloop, history)
    try:
        message = window.banners.messages().get("history", "")
        assert "could not be used" in message and "kept as" in message
        banner = window.banners.banners["history"]
        assert banner.action_button is not None and banner.action_button.text() == "OK"
        banner.action_button.click()
        assert "history" not in window.banners.messages()
        started.connect()  # the fresh history works
    finally:
        stop_rig(started)


def test_a_retention_failure_is_logged_and_shown_and_the_app_starts(
    window: MainWindow,
    qloop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log_path = setup_logging(tmp_path / "log")

    def refuse(self: SessionStore, keep_days: int, now: Any = None) -> int:
        raise StoreError("The history could not be used while applying retention: disk full.")

    monkeypatch.setattr(SessionStore, "apply_retention", refuse)
    started = start_rig(window, qloop, tmp_path / "history.db")
    try:
        assert "disk full" in window.banners.messages().get("retention", "")
        flush_log()
        assert "retention could not be applied" in log_path.read_text(encoding="utf-8")
        started.connect()
    finally:
        stop_rig(started)


def test_a_shorter_history_applies_when_saved_and_keep_nothing_empties_it_at_exit(
    window: MainWindow, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.store.factories import make_meta

    rig = start_rig(window, qloop, tmp_path / "history.db")
    stopped = False
    try:
        store = rig.backend.store
        old = make_meta(datetime.now(UTC) - timedelta(days=10))
        recent = make_meta(datetime.now(UTC) - timedelta(days=2))
        for meta in (old, recent):
            store.start_session(meta)
            store.end_session(meta.session_id, meta.started_utc)
        rig.connect()
        rig.speak_by_button()
        current = window.session_id
        dialog = window.open_settings("Privacy")
        dialog.retention_days.setValue(7)
        rig.in_loop(dialog._apply)
        rig.settle(lambda: old.session_id not in {s.session_id for s in store.sessions()})
        assert {s.session_id for s in store.sessions()} == {recent.session_id, current}
        rig.settle(lambda: "1 older session(s) deleted" in window.statusBar().currentMessage())

        dialog = window.open_settings("Privacy")
        dialog.retention_days.setValue(0)  # "Only the current session"
        rig.in_loop(dialog._apply)
        rig.settle(lambda: {s.session_id for s in store.sessions()} == {current})
        path = store.path
        stopped = True
        stop_rig(rig)  # the session ends with the app
        with SessionStore(path) as reopened:
            assert reopened.sessions() == [], "the session outlived 'only the current session'"
    finally:
        if not stopped:
            stop_rig(rig)


# ---------------------------------------------------------------- rebuilds


def test_two_quick_applies_leave_one_live_stack_and_close_every_replaced_port(rig: Rig) -> None:
    window = rig.window
    rig.connect()
    other = next(m for m in window.services.models if m != window.settings.model)

    first = window.open_settings()
    first.model.setCurrentIndex(first.model.findData(other))
    rig.in_loop(first._apply)
    # The first rebuild is under way (closing the old stack) when the second comes.
    second = window.open_settings()
    second.language.setText("German")
    rig.in_loop(second._apply)

    backend = rig.backend
    rig.settle(lambda: backend.controller.settings.language == "German")
    rig.settle(lambda: window.state is S.READY)
    live = [audio for audio in rig.audios if not audio.closed]
    assert live == [backend.audio]
    assert all(audio.closed for audio in rig.audios[:-1])
    assert backend.controller.settings.model == other
    assert backend.controller.settings.language == "German"
    setup = str(rig.emulator.connections[-1].setup)
    assert other in setup and "German" in setup
    rig.speak_by_button()


def test_a_change_the_controller_takes_as_an_intent_keeps_the_stack(rig: Rig) -> None:
    window, backend = rig.window, rig.backend
    rig.connect()
    controller, audio = backend.controller, backend.audio
    dialog = window.open_settings()
    dialog.profile.setCurrentIndex(dialog.profile.findData("tutor"))
    dialog.vad_silence.setValue(900)
    dialog.ptt_key.setKeySequence("F8")
    rig.in_loop(dialog._apply)
    rig.settle(lambda: window.statusBar().currentMessage() == "Settings saved.")
    assert backend.controller is controller and backend.audio is audio  # no new stack
    rig.settle(lambda: (controller.settings.profile, controller.settings.vad_silence_ms)
               == ("tutor", 900))  # fmt: skip
    assert len(rig.audios) == 1 and not audio.closed


# ---------------------------------------------------------------- secrets


def test_the_loaded_key_and_tokens_never_reach_the_log_file(
    window: MainWindow,
    qloop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not shaped like a Google key: only exact-key redaction can catch it.
    key = "plain-secret-9f8e7d6c5b4a"
    token = "auth_tokens/5a4b3c2d1e0f.9g8h-7i6j"
    monkeypatch.setenv("GEMINI_API_KEY", key)
    import keyring

    monkeypatch.setattr(keyring, "get_password", lambda *_: None)
    log_path = setup_logging(tmp_path / "log")
    backend = Backend(
        window,
        BackendOptions(
            endpoint="wss://127.0.0.1:9/", history_path=str(tmp_path / "h.db"),
            audio_factory=lambda _loop, _settings: silent_audio(),
        ),
    )  # fmt: skip
    run(qloop, backend.start(), 30.0)
    try:
        logging.getLogger("emodesk.test").error("request failed for %s with %s", key, token)
        stored = "another-plain-secret-1234"
        monkeypatch.setattr(keyring, "set_password", lambda *_: None)

        async def save_key() -> None:
            await window.services.store_api_key(stored)  # type: ignore[misc]
            await backend.settled()  # the key is put to use in the background

        run(qloop, save_key(), 30.0)
        logging.getLogger("emodesk.test").error("saving %s failed", stored)
        flush_log()
        logged = log_path.read_text(encoding="utf-8")
        assert "request failed for [redacted]" in logged and "saving [redacted]" in logged
        assert key not in logged and token not in logged and stored not in logged
        assert window.services.has_api_key()
    finally:
        run(qloop, backend.stop(), 30.0)


# ---------------------------------------------------------------- off the GUI thread


def test_the_settings_dialog_opens_at_once_and_lists_devices_when_they_arrive(
    window: MainWindow, qloop: asyncio.AbstractEventLoop
) -> None:
    arrived = asyncio.Event()
    asked: list[bool] = []

    async def devices(refresh: bool) -> tuple[list[str], list[str]]:
        asked.append(refresh)
        await arrived.wait()
        return ["USB mic"], ["Headphones"]

    window.services = Services(devices=devices)
    dialog = window.open_settings("Audio")
    assert dialog.isVisible() and dialog.device_status.text() == LOADING_DEVICES
    assert [dialog.input_device.itemText(i) for i in range(dialog.input_device.count())] == [
        "System default"
    ]
    qloop.call_soon(arrived.set)
    settle(qloop, lambda: dialog.devices_loaded)
    assert dialog.input_device.findData("USB mic") >= 0
    assert dialog.output_device.findData("Headphones") >= 0
    assert dialog.device_status.text() == ""
    dialog.refresh_devices_button.click()
    settle(qloop, lambda: asked == [False, True] and dialog.refresh_devices_button.isEnabled())
    dialog.close()


def test_device_lists_are_read_once_off_the_gui_thread_and_refreshed_on_request(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emodesk.app.devices

    threads: list[str] = []

    def list_names() -> tuple[list[str], list[str]]:
        threads.append(threading.current_thread().name)
        return ["mic"], ["speaker"]

    monkeypatch.setattr(emodesk.app.devices, "list_device_names", list_names)
    devices = rig.window.services.devices
    assert run(rig.loop, devices(False)) == (["mic"], ["speaker"])
    run(rig.loop, devices(False))
    assert len(threads) == 1
    run(rig.loop, devices(True))
    assert len(threads) == 2
    assert threading.main_thread().name not in threads


def test_closing_the_level_preview_runs_off_the_gui_thread(rig: Rig) -> None:
    closed_on: list[str] = []

    class Engine:
        def close(self, timeout_s: float = 3.0) -> None:
            closed_on.append(threading.current_thread().name)

    rig.backend.preview.engine = Engine()  # type: ignore[assignment]
    preview = rig.window.services.level_preview
    assert preview is not None
    assert run(rig.loop, preview(None)) is None
    assert closed_on and closed_on[0] != threading.main_thread().name
    assert rig.backend.preview.engine is None


def test_the_key_check_does_not_ask_the_keyring_on_the_gui_thread(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    asked_on: list[str] = []

    def record(*_: Any) -> None:
        asked_on.append(threading.current_thread().name)

    monkeypatch.setattr(keyring, "get_password", record)
    dialog = rig.window.open_settings("API key")
    assert "No key" in dialog.key_status.text()
    rig.window._show_synthetic()  # the status bar's "Add API key" asks too
    rig.settle(dialog.refresh_devices_button.isEnabled)  # what the dialog started ran
    dialog.close()
    assert threading.main_thread().name not in asked_on


PRELOAD_SCRIPT = """
import asyncio, importlib.abc, sys, threading
import qasync
from PySide6.QtWidgets import QApplication

imports = []

class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "google.genai" or name.startswith("google.genai."):
            imports.append((name, threading.current_thread() is threading.main_thread()))
        return None

sys.meta_path.insert(0, Spy())
app = QApplication([])
from emodesk.app import Backend, BackendOptions
from tests.support.qt import make_window
from emodesk.ui.settings_store import SettingsStore, open_qsettings
from tests.support.app_rig import silent_audio

loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)
window = make_window(SettingsStore(open_qsettings(sys.argv[1] + "/s.ini")))
window.show()
backend = Backend(window, BackendOptions(
    offline=True, history_path=sys.argv[1] + "/h.db",
    audio_factory=lambda _l, _s: silent_audio(), emulator_speed=50.0))

async def main():
    await backend.start()
    assert imports, "google-genai was not loaded at start"
    before = len(imports)
    assert await backend.controller.connect()
    connect_imports = imports[before:]
    await backend.stop()
    on_gui = [name for name, main in imports if main]
    print("ON-GUI", on_gui, "AT-CONNECT", connect_imports)

with loop:
    loop.run_until_complete(asyncio.wait_for(main(), 60))
"""


def test_google_genai_is_imported_off_the_gui_thread_before_the_first_connect(
    tmp_path: Path,
) -> None:
    """A fresh process (this one has the SDK imported already): every google-genai
    module is imported on a worker thread during start, none at connect."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("GEMINI_API_KEY", None)
    done = subprocess.run(
        [sys.executable, "-c", PRELOAD_SCRIPT, str(tmp_path)], env=env,
        cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ON-GUI [] AT-CONNECT []" in done.stdout, done.stdout[-2000:]


# ---------------------------------------------------------------- where the app connects


def test_a_remote_endpoint_without_a_key_falls_back_to_the_labelled_offline_demo(
    window: MainWindow, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    backend = Backend(
        window,
        BackendOptions(
            endpoint="wss://live.example.test", history_path=str(tmp_path / "h.db"),
            audio_factory=lambda _loop, _settings: silent_audio(),
            emulator_speed=50.0,
        ),
    )  # fmt: skip
    run(qloop, backend.start(), 30.0)
    try:
        assert backend.synthetic and backend.emulator is not None
        banner = window.banners.banners["offline"]
        assert "Cannot connect as asked" in banner.message.text()
        assert "live.example.test" in banner.message.text()
        # The plan points the controller at the local emulator, never at the remote host.
        run(qloop, backend.controller.connect(), 30.0)
        assert backend.controller.state is ConversationState.READY
    finally:
        run(qloop, backend.stop(), 30.0)


# ---------------------------------------------------------------- a key saved while running


@dataclass
class KeySwitchRig:
    backend: Backend
    real_server: Any  # the emulator standing in for Google's endpoint
    saved: list[str]  # keys written to the keyring
    chosen_with: list[str | None]  # keys the connection was chosen with


def start_offline_with_a_stand_in_endpoint(
    window: MainWindow, qloop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: Any
) -> KeySwitchRig:
    """The app started without a key (the offline demo); a key makes it choose a second
    emulator that stands in for Google's endpoint."""
    import dataclasses

    import keyring

    from emodesk.conversation import connection as connection_module
    from emodesk.live.emulator.server import EmulatorServer

    saved: list[str] = []
    monkeypatch.setattr(keyring, "set_password", lambda _s, _u, key: saved.append(key))
    real_server = EmulatorServer(speed=50.0, record=True)
    run(qloop, real_server.start())
    chosen_with: list[str | None] = []

    def choose(endpoint: Any, ca_file: Any, key: str | None) -> Any:
        chosen_with.append(key)
        if not key:
            return connection_module.ConnectionPlan(start_emulator=True)
        plan = connection_module.ConnectionPlan(start_emulator=True)
        stand_in = plan.for_emulator(real_server.url, real_server.ca_file)
        return connection_module.ConnectionPlan(
            start_emulator=False,
            connection=dataclasses.replace(stand_in, api_key=key, synthetic=False),
        )

    monkeypatch.setattr(connection_module, "choose_connection", choose)
    backend = Backend(
        window,
        BackendOptions(
            history_path=str(tmp_path / "h.db"), emulator_speed=50.0,
            audio_factory=lambda _loop, _settings: silent_audio(),
        ),
    )  # fmt: skip
    run(qloop, backend.start(), 30.0)
    return KeySwitchRig(backend, real_server, saved, chosen_with)


def test_a_key_saved_in_the_offline_demo_is_used_at_once(
    window: MainWindow,
    qloop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No key at start: the offline demo. Saving a key in Settings moves the running app
    to the endpoint with that key (a second emulator stands in for Google's) and
    reconnects, with no restart; the demo's emulator is stopped."""
    keys = start_offline_with_a_stand_in_endpoint(window, qloop, tmp_path, monkeypatch)
    backend, real_server, saved, chosen_with = (
        keys.backend,
        keys.real_server,
        keys.saved,
        keys.chosen_with,
    )
    try:
        demo = backend.emulator
        assert demo is not None and backend.synthetic and "offline" in window.banners.banners
        window.connect_action.trigger()
        settle(qloop, lambda: window.state is S.READY, 15)

        dialog = window.open_settings("API key")
        dialog.api_key.setText("  AIzaSyTest-key-0123456789  ")
        dialog.save_key_button.click()
        settle(qloop, lambda: "now uses it" in dialog.key_status.text(), 10)
        settle(qloop, lambda: bool(real_server.connections) and window.state is S.READY, 20)
        settle(qloop, lambda: backend.keys.switch is not None and backend.keys.switch.done(), 20)

        assert saved == ["AIzaSyTest-key-0123456789"] and chosen_with[-1] == saved[0]
        assert real_server.connections[-1].api_key == saved[0]
        assert not backend.synthetic and backend.emulator is None
        assert "offline" not in window.banners.banners and not window.synthetic_label.isVisible()
        assert backend.keys.switch.exception() is None
        assert demo._server is None, "the offline demo's emulator was left running"
        dialog.close()
    finally:
        run(qloop, backend.stop(), 30.0)
        run(qloop, real_server.stop())


def test_two_keys_saved_in_a_row_end_on_the_newest_with_a_working_stack(
    window: MainWindow,
    qloop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key saved while the previous one is still being applied: the first switch is
    not cut off half-way (old stack closed, no new one); the newest key is the one in
    use, connected, and the demo's emulator is stopped."""
    keys = start_offline_with_a_stand_in_endpoint(window, qloop, tmp_path, monkeypatch)
    backend = keys.backend
    try:
        demo = backend.emulator
        window.connect_action.trigger()
        settle(qloop, lambda: window.state is S.READY, 15)

        async def save_two() -> None:
            await backend.keys.store("AIzaSyFirst-key-0123456789")
            await backend.keys.store("AIzaSySecond-key-0123456789")

        run(qloop, save_two())
        run(qloop, backend.settled(), 30)
        settle(qloop, lambda: window.state is S.READY, 20)
        assert keys.saved == ["AIzaSyFirst-key-0123456789", "AIzaSySecond-key-0123456789"]
        assert keys.chosen_with[-1] == keys.saved[-1]
        assert keys.real_server.connections[-1].api_key == keys.saved[-1]
        assert backend.controller.state is S.READY and not backend.synthetic
        assert demo is not None and demo._server is None, "the demo's emulator was left running"
    finally:
        run(qloop, backend.stop(), 30.0)
        run(qloop, keys.real_server.stop())
