"""No keyring service on this desktop (keyring's fail backend, as on a bare X11 session):
the settings dialog says so when it shows its API key page, offers the key for this
session only and says how to set GEMINI_API_KEY; a key used that way runs the app and is
written nowhere (keyring, settings file, log, history)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.core
import pytest

from emodesk.app import Backend, BackendOptions
from emodesk.app.keys import ApiKeys
from emodesk.core.settings import Page
from emodesk.live import credentials
from emodesk.ui.errors import setup_logging
from emodesk.ui.main_window import MainWindow
from emodesk.ui.services import Services
from emodesk.ui.settings_dialog import SettingsDialog
from tests.support.app_rig import silent_audio
from tests.support.keys import fake_api_key
from tests.support.qt import run, settle

pytestmark = pytest.mark.timeout(90)

KEY = fake_api_key("D-session-only-key")


@pytest.fixture(autouse=True)
def _gc_on_the_gui_thread() -> Iterator[None]:
    """These tests run executor threads (the keyring check, PortAudio's listing, the key
    check's HTTP client); a garbage collection that starts in one of them can delete an
    earlier test's Qt wrappers off the GUI thread, and a later test then crashes in
    QTimerInfoList::activateTimers (seen 3 runs in 4 without this). Collect here."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """keyring's fail backend, chosen the way a user's environment chooses it."""
    previous = keyring.get_keyring()
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    keyring.core.init_backend()
    assert type(keyring.get_keyring()).__module__ == "keyring.backends.fail"
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def key_services(keys: ApiKeys) -> Services:
    return Services(
        has_api_key=keys.has_key,
        store_api_key=keys.store,
        keyring_problem=keys.keyring_problem,
        use_api_key_for_session=keys.use_for_session,
        test_api_key=keys.test,
    )


def key_page(dialog: SettingsDialog) -> int:
    return list(Page).index(Page.API_KEY)


def test_no_keyring_is_said_on_the_key_page_and_the_key_serves_this_session(
    no_keyring: None, window: MainWindow, qloop: asyncio.AbstractEventLoop
) -> None:
    used: list[str] = []

    async def use_key(key: str) -> None:
        used.append(key)

    keys = ApiKeys(use_key=use_key)
    window.services = key_services(keys)
    dialog = window.open_settings(Page.AUDIO.value)
    settle(qloop, lambda: dialog.devices_loaded, 10)
    assert dialog.keyring_check is None, "the keyring is asked only for the key page"
    dialog.tabs.setCurrentIndex(key_page(dialog))
    assert dialog.keyring_check is not None
    settle(qloop, lambda: dialog.keyring_status.isVisibleTo(dialog), 10)

    said = dialog.keyring_status.text()
    assert said.startswith("No keyring service is running")
    assert "for this session only" in said and "export GEMINI_API_KEY=" in said
    assert "keyrings.alt" not in said and "pip" not in said
    assert not dialog.save_key_button.isEnabled() and dialog.session_key_button.isEnabled()

    dialog.api_key.setText(f"  {KEY} ")
    dialog.session_key_button.click()
    settle(qloop, lambda: "until it quits" in dialog.key_status.text(), 10)
    assert "never saved" in dialog.key_status.text() and dialog.api_key.text() == ""
    assert keys.switch is not None
    run(qloop, keys.switch)
    assert used == [KEY] and keys.has_key()
    assert run(qloop, keys.load()) == KEY  # what a change of connection reads again
    dialog.close()


def test_a_save_that_fails_says_why_in_plain_words_and_offers_the_session(
    no_keyring: None, window: MainWindow, qloop: asyncio.AbstractEventLoop
) -> None:
    """Saved before the check has answered (or without one): keyring's pip advice never
    reaches the user."""

    async def use_key(key: str) -> None:
        raise AssertionError("a key that was not saved was switched to")

    keys = ApiKeys(use_key=use_key)
    services = key_services(keys)
    services.keyring_problem = None
    window.services = services
    dialog = window.open_settings(Page.API_KEY.value)
    dialog.api_key.setText(KEY)
    dialog.save_key_button.click()
    settle(qloop, lambda: dialog.key_status.text().startswith("Could not save"), 10)
    said = dialog.key_status.text()
    assert "No keyring service is running" in said and "for this session only" in said
    assert "keyrings.alt" not in said and KEY not in said
    assert not keys.has_key() and dialog.save_key_button.isEnabled()
    dialog.close()


def test_a_locked_keyring_is_said_and_saving_stays_possible(
    qloop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyring.backends import SecretService

    previous = keyring.get_keyring()
    keyring.set_keyring(SecretService.Keyring())
    monkeypatch.setattr(credentials, "_secret_service_locked", lambda backend: True)
    try:

        async def use_key(key: str) -> None: ...

        problem = run(qloop, ApiKeys(use_key=use_key).keyring_problem())
    finally:
        keyring.set_keyring(previous)
    assert problem is not None and problem.can_save
    assert problem.message.startswith("The system keyring is locked")
    assert "GEMINI_API_KEY" in problem.message


def test_a_working_keyring_is_no_problem(qloop: asyncio.AbstractEventLoop) -> None:
    from keyring.backends import SecretService

    previous = keyring.get_keyring()
    keyring.set_keyring(SecretService.Keyring())
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(credentials, "_secret_service_locked", lambda backend: False)

            async def use_key(key: str) -> None: ...

            assert run(qloop, ApiKeys(use_key=use_key).keyring_problem()) is None
    finally:
        keyring.set_keyring(previous)


def test_testing_the_session_key_offline_blames_the_network_not_the_key(
    no_keyring: None, qloop: asyncio.AbstractEventLoop
) -> None:
    """The test run reaches nothing beyond loopback, like a machine with no network."""

    async def use_key(key: str) -> None: ...

    keys = ApiKeys(use_key=use_key)
    run(qloop, keys.use_for_session(KEY))
    ok, message = run(qloop, keys.test(""), 30)
    assert not ok and "the key was not checked" in message
    assert "not accepted" not in message and "rejected" not in message


def test_a_session_key_runs_the_app_and_is_written_nowhere(
    no_keyring: None,
    window: MainWindow,
    qloop: asyncio.AbstractEventLoop,
    tmp_path: Path,
) -> None:
    log_path = setup_logging(tmp_path / "log")
    backend = Backend(
        window,
        BackendOptions(
            history_path=str(tmp_path / "history.db"),
            audio_factory=lambda _loop, _settings: silent_audio(),
        ),
    )
    run(qloop, backend.start(), 30.0)
    try:
        assert backend.synthetic, "no key: the offline demo"
        dialog = window.open_settings("API key")
        settle(qloop, lambda: dialog.keyring_status.isVisibleTo(dialog), 10)
        dialog.api_key.setText(KEY)
        dialog.session_key_button.click()
        settle(qloop, lambda: "until it quits" in dialog.key_status.text(), 10)
        run(qloop, backend.settled(), 30.0)
        assert not backend.synthetic and backend.emulator is None, "the key is in use"
        assert window.services.has_api_key()
        logging.getLogger("emodesk.test").error("a request with %s failed", KEY)
        # The device listing (PortAudio, on an executor) ends before the loop does.
        settle(qloop, lambda: dialog.devices_loaded, 20)
        dialog.close()
        window.save_settings(window.settings)  # the settings file is written
        for handler in logging.getLogger().handlers:
            handler.flush()
        assert "a request with [redacted] failed" in log_path.read_text(encoding="utf-8")
    finally:
        run(qloop, backend.stop(), 30.0)
    window.store.q.sync()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".ini" for p in written) and log_path in written
    for path in written:
        assert KEY.encode() not in path.read_bytes(), f"the session key was written to {path}"
