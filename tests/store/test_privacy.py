"""The history is its owner's only: history.sqlite3, its -wal and -shm and the data folder
are 0600/0700, and the default data folder an older version left open is tightened when
the history opens. A file the user named (`--db`) keeps the mode the user gave it."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from emodesk.core.privacy import use_private_umask
from emodesk.store import SessionStore, default_history_path
from tests.store.factories import make_entry, make_meta


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_some(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    store.add_reading(meta.session_id, make_entry(1))
    store.add_transcript(meta.session_id, 1, "user", "how I feel today")


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "emodesk"


def test_a_new_history_and_its_wal_and_shm_are_private(data_home: Path) -> None:
    use_private_umask()  # as `emodesk` sets it at start (the conftest restores it)
    with SessionStore() as store:
        _write_some(store)
        path = store.path
        assert path.parent == data_home
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert wal.exists() and shm.exists()
        assert {p.name: mode(p) for p in (path, wal, shm)} == {
            "history.sqlite3": 0o600,
            "history.sqlite3-wal": 0o600,
            "history.sqlite3-shm": 0o600,
        }
    assert mode(data_home) == 0o700


def test_an_open_default_folder_is_tightened_at_open_and_logged(
    data_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.umask(0o022)  # an older version, or another program, with the usual umask
    with SessionStore() as store:
        _write_some(store)
    history = default_history_path()
    kept = history.with_name("history.damaged-20260101T000000Z.sqlite3")
    kept.write_bytes(b"an earlier damaged copy")
    for path in (history, kept):
        path.chmod(0o644)
    data_home.chmod(0o755)

    with caplog.at_level(logging.INFO, logger="emodesk.store"), SessionStore() as store:
        _write_some(store)
        # sqlite gives the WAL and SHM the database file's mode, whatever the umask.
        wal, shm = Path(f"{history}-wal"), Path(f"{history}-shm")
        assert mode(wal) == 0o600 and mode(shm) == 0o600

    assert mode(data_home) == 0o700
    assert mode(history) == 0o600
    assert mode(kept) == 0o600
    lines = [r.getMessage() for r in caplog.records if "made private" in r.getMessage()]
    assert len(lines) == 1
    assert str(history) in lines[0] and str(data_home) in lines[0] and str(kept) in lines[0]


def test_a_file_the_user_named_keeps_its_folder_and_mode(tmp_path: Path) -> None:
    os.umask(0o022)
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    path = folder / "team.db"
    sqlite3.connect(path).close()
    path.chmod(0o640)
    neighbour = folder / "notes.txt"
    neighbour.write_text("not the app's")
    neighbour.chmod(0o644)

    with SessionStore(path, named_by_user=True) as store:
        _write_some(store)

    assert mode(folder) == 0o755
    assert mode(path) == 0o640
    assert mode(neighbour) == 0o644
