"""The services the composition root gives the settings dialog, each on its own: the API
key (saved, switched to, tested), the device lists, and the history's upkeep."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import pytest

import emodesk.app.devices
from emodesk.app.devices import DeviceNames
from emodesk.app.history import DELETED_ALL, History
from emodesk.app.keys import ApiKeys
from emodesk.store import SessionStore, StoreError
from tests.store.factories import make_meta

pytestmark = pytest.mark.timeout(30)


# ---------------------------------------------------------------- the API key


@pytest.fixture
def keyring_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    saved: list[str] = []
    monkeypatch.setattr(keyring, "set_password", lambda _s, _u, key: saved.append(key))
    monkeypatch.setattr(keyring, "get_password", lambda *_: None)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    return saved


async def test_keys_saved_in_a_row_switch_once_each_in_order_and_end_on_the_newest(
    keyring_calls: list[str],
) -> None:
    used: list[str] = []
    first_switch_may_end = asyncio.Event()

    async def use_key(key: str) -> None:
        used.append(key)
        await first_switch_may_end.wait()  # the first switch is under way...

    keys = ApiKeys(use_key=use_key)
    assert not keys.has_key()
    assert "now uses it" in await keys.store("  first-key  ")
    await asyncio.sleep(0)
    await keys.store("second-key")  # ...when two more keys are saved
    await keys.store("third-key")
    first_switch_may_end.set()
    assert keys.switch is not None
    await asyncio.wait_for(keys.switch, 5)
    assert keyring_calls == ["first-key", "second-key", "third-key"]
    assert used == ["first-key", "third-key"]  # never cut short, and the newest last
    assert keys.has_key()


async def test_an_offline_run_saves_the_key_but_does_not_switch(
    keyring_calls: list[str],
) -> None:
    async def use_key(key: str) -> None:
        raise AssertionError("an offline run switched")

    keys = ApiKeys(use_key=use_key, offline=True)
    assert "stays offline" in await keys.store("a-key")
    assert keyring_calls == ["a-key"] and keys.switch is None and keys.has_key()
    assert await keys.test("a-key") == (
        False, "this run is offline (--offline): keys are not checked",
    )  # fmt: skip


async def test_a_key_is_only_tested_against_googles_endpoint(keyring_calls: list[str]) -> None:
    async def use_key(key: str) -> None: ...

    assert await ApiKeys(use_key=use_key).test("") == (False, "no key to test")
    custom = ApiKeys(use_key=use_key, endpoint="wss://127.0.0.1:9/")
    ok, why = await custom.test("a-key")
    assert not ok and "custom endpoint" in why


async def test_an_unusable_stored_key_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from emodesk.live import credentials

    def broken(env: object = None) -> str:
        raise credentials.CredentialError("the keyring is locked")

    monkeypatch.setattr(credentials, "load_api_key", broken)

    async def use_key(key: str) -> None: ...

    keys = ApiKeys(use_key=use_key)
    assert await keys.load() is None and not keys.has_key()


# ---------------------------------------------------------------- the device lists


async def test_devices_are_listed_once_off_the_loop_and_again_on_refresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[threading.Thread] = []

    def list_names() -> tuple[list[str], list[str]]:
        threads.append(threading.current_thread())
        return ["mic"], ["speaker"]

    monkeypatch.setattr(emodesk.app.devices, "list_device_names", list_names)
    devices = DeviceNames()
    both = await asyncio.gather(devices.names(False), devices.names(False))
    assert both == [(["mic"], ["speaker"])] * 2 and len(threads) == 1  # the second waited
    await devices.names(True)
    assert len(threads) == 2 and threading.main_thread() not in threads


# ---------------------------------------------------------------- the history


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    with SessionStore(tmp_path / "history.db") as opened:
        yield opened


def add_ended_session(store: SessionStore, days_ago: float) -> str:
    meta = make_meta(datetime.now(UTC) - timedelta(days=days_ago))
    store.start_session(meta)
    store.end_session(meta.session_id, meta.started_utc)
    return meta.session_id


async def test_retention_deletes_older_sessions_and_keep_nothing_applies_at_exit(
    store: SessionStore,
) -> None:
    add_ended_session(store, 10)
    recent = add_ended_session(store, 2)
    history = History(store, warn=lambda message: pytest.fail(message))
    assert await history.apply_retention(7) == 1
    assert [s.session_id for s in store.sessions()] == [recent]
    await history.at_exit()  # 7 days: nothing more goes at exit
    assert [s.session_id for s in store.sessions()] == [recent]
    await history.apply_retention(0)
    add_ended_session(store, 0)
    await history.at_exit()
    assert store.sessions() == []


async def test_a_retention_failure_is_shown_and_deletes_nothing(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(keep_days: int) -> int:
        raise StoreError("disk full")

    monkeypatch.setattr(store, "apply_retention", refuse)
    warnings: list[str] = []
    history = History(store, warn=warnings.append)
    assert await history.apply_retention(7) == 0
    assert warnings == [
        "Old sessions could not be deleted as the retention setting asks: disk full"
    ]
    assert history.retention_days == 7


async def test_delete_all_without_a_stack_empties_the_history_and_forgets_consent(
    store: SessionStore,
) -> None:
    add_ended_session(store, 1)
    forgotten: list[bool] = []
    history = History(store, warn=lambda message: pytest.fail(message))
    assert await history.delete_all(None, lambda: forgotten.append(True)) == DELETED_ALL
    assert store.sessions() == [] and forgotten == [True]


def test_past_sessions_are_labelled_in_local_time_with_their_readings(
    store: SessionStore,
) -> None:
    session = add_ended_session(store, 1)
    (listed,) = History(store, warn=lambda message: None).sessions()
    started = store.sessions()[0].started_utc.astimezone()
    assert listed == (session, f"{started:%Y-%m-%d %H:%M} · 0 readings")
