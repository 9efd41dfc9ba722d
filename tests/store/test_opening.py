"""A history file that cannot be used is set aside for a fresh one, once, with a message;
a folder that cannot be written is a StoreError. Never a crash, never a loop."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from emodesk.store import NotAHistory, SessionStore, StoreError
from emodesk.store.schema import SCHEMA_VERSION
from tests.store.factories import make_entry, make_meta


def _filled_history(path: Path, readings: int = 200) -> str:
    with SessionStore(path) as store:
        meta = make_meta()
        store.start_session(meta)
        for turn in range(readings):
            store.add_reading(meta.session_id, make_entry(turn))
            store.add_transcript(meta.session_id, turn, "user", "words " * 20)
    return meta.session_id


def _assert_recovered(store: SessionStore, path: Path, reason: str) -> Path:
    report = store.open_report
    assert report.path == path
    assert report.recovered_from is not None
    assert report.recovered_from.parent == path.parent
    assert report.recovered_from.exists()
    assert reason in report.message
    assert report.recovered_from.name in report.message
    # The fresh file works.
    meta = make_meta()
    store.start_session(meta)
    store.add_reading(meta.session_id, make_entry(1))
    assert [s.session_id for s in store.sessions()] == [meta.session_id]
    return report.recovered_from


def test_random_bytes_are_kept_and_a_fresh_file_started(history_path: Path) -> None:
    history_path.parent.mkdir(parents=True)
    garbage = os.urandom(64 * 1024)
    history_path.write_bytes(garbage)

    with SessionStore(history_path) as store:
        kept = _assert_recovered(store, history_path, "damaged")

    assert kept.read_bytes() == garbage


def test_a_truncated_file_is_kept_and_a_fresh_file_started(history_path: Path) -> None:
    _filled_history(history_path)
    whole = history_path.read_bytes()
    assert len(whole) > 16 * 4096  # enough pages that cutting it loses tables' pages
    history_path.write_bytes(whole[: len(whole) // 3])

    with SessionStore(history_path) as store:
        kept = _assert_recovered(store, history_path, "damaged")

    assert kept.stat().st_size == len(whole) // 3


def test_a_file_cut_inside_the_header_is_recovered(history_path: Path) -> None:
    _filled_history(history_path, readings=5)
    history_path.write_bytes(history_path.read_bytes()[:50])
    with SessionStore(history_path) as store:
        _assert_recovered(store, history_path, "damaged")


def test_a_newer_schema_is_kept_untouched(history_path: Path) -> None:
    session_id = _filled_history(history_path, readings=3)
    with sqlite3.connect(history_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()

    with SessionStore(history_path) as store:
        kept = _assert_recovered(store, history_path, "newer EmoDesk")

    # The newer app's data is intact in the kept copy (its WAL moved along with it).
    with sqlite3.connect(kept) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 5,)
        assert conn.execute(
            "SELECT count(*) FROM readings WHERE session_id = ?", (session_id,)
        ).fetchone() == (3,)
    conn.close()


def test_another_programs_database_is_not_written_into(history_path: Path) -> None:
    history_path.parent.mkdir(parents=True)
    with sqlite3.connect(history_path) as conn:
        conn.execute("CREATE TABLE sessions (something_else TEXT)")
    conn.close()
    with SessionStore(history_path) as store:
        _assert_recovered(store, history_path, "not an EmoDesk history")


def test_the_next_open_after_a_recovery_is_normal(history_path: Path) -> None:
    history_path.parent.mkdir(parents=True)
    history_path.write_bytes(b"not a database" * 100)
    with SessionStore(history_path) as store:
        assert store.open_report.recovered_from is not None
        meta = make_meta()
        store.start_session(meta)
    with SessionStore(history_path) as store:
        assert store.open_report.recovered_from is None
        assert store.open_report.message == ""
        assert [s.session_id for s in store.sessions()] == [meta.session_id]


def test_two_recoveries_in_the_same_second_keep_both_copies(history_path: Path) -> None:
    history_path.parent.mkdir(parents=True)
    kept: list[Path] = []
    for content in (b"first" * 500, b"second" * 500):
        history_path.write_bytes(content)
        with SessionStore(history_path) as store:
            assert store.open_report.recovered_from is not None
            kept.append(store.open_report.recovered_from)
    assert kept[0] != kept[1]
    assert kept[0].read_bytes() == b"first" * 500
    assert kept[1].read_bytes() == b"second" * 500


def test_a_folder_that_is_a_file_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StoreError, match="could not be used"):
        SessionStore(blocker / "history.sqlite3")


# The read-only case runs in a child process: root ignores permission bits, so as root
# the child drops to an unprivileged user after importing (the interpreter itself may sit
# in a folder only root can read).
_READ_ONLY_CHILD = textwrap.dedent(
    """
    import os, sys
    from emodesk.store import SessionStore, StoreError
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    try:
        SessionStore(sys.argv[1])
    except StoreError as exc:
        print("StoreError:", exc)
        raise SystemExit(0)
    print("opened")
    raise SystemExit(1)
    """
)


@pytest.fixture
def reachable_path() -> Iterator[Path]:
    """A history path whose ancestors any user may pass through (pytest's tmp_path is
    private to root, which would fail the child for the wrong reason)."""
    base = Path(tempfile.mkdtemp(prefix="emodesk-store-"))
    base.chmod(0o755)
    yield base / "data" / "history.sqlite3"
    (base / "data").chmod(0o755)
    shutil.rmtree(base)


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "existing-file"])
def test_a_read_only_folder_is_a_store_error(reachable_path: Path, existing: bool) -> None:
    history_path = reachable_path
    if existing:
        _filled_history(history_path, readings=2)
    else:
        history_path.parent.mkdir(parents=True)
    history_path.parent.chmod(0o555)
    if history_path.exists():
        history_path.chmod(0o444)
    try:
        child = subprocess.run(
            [sys.executable, "-c", _READ_ONLY_CHILD, str(history_path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )
    finally:
        history_path.parent.chmod(0o755)
    assert child.returncode == 0, child.stdout + child.stderr
    assert f"StoreError: The history at {history_path} could not be used while opening it" in (
        child.stdout
    )


# A file the user named (`converse --db PATH`) is the user's: if it cannot be the history
# it is refused and left exactly as it was; only the app's own file is set aside.
def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_named_file_that_is_not_sqlite_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Call the dentist on Tuesday.\n")
    before = _snapshot(tmp_path)
    with pytest.raises(NotAHistory) as caught:
        SessionStore(notes, named_by_user=True)
    assert str(caught.value) == (
        f"{notes} is not an EmoDesk history (not an SQLite database); nothing was changed"
    )
    assert _snapshot(tmp_path) == before


def test_the_apps_own_file_that_is_not_sqlite_is_still_set_aside(history_path: Path) -> None:
    history_path.parent.mkdir(parents=True)
    history_path.write_text("Call the dentist on Tuesday.\n")
    with SessionStore(history_path) as store:
        kept = _assert_recovered(store, history_path, "damaged")
    assert kept.read_text() == "Call the dentist on Tuesday.\n"


def test_a_named_database_of_another_program_is_refused_unchanged(tmp_path: Path) -> None:
    other = tmp_path / "photos.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE albums (name TEXT)")
        conn.execute("INSERT INTO albums VALUES ('summer')")
    conn.close()
    before = _snapshot(tmp_path)
    with pytest.raises(NotAHistory, match=r"another program.*nothing was changed"):
        SessionStore(other, named_by_user=True)
    assert _snapshot(tmp_path) == before  # not switched to WAL, nothing beside it


def test_a_named_newer_history_is_refused_unchanged(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    _filled_history(newer, readings=2)
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = _snapshot(tmp_path)
    with pytest.raises(NotAHistory, match=r"newer EmoDesk.*nothing was changed"):
        SessionStore(newer, named_by_user=True)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_named_path_that_is_not_a_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "odd"
    if kind == "folder":
        path.mkdir()
    else:
        os.mkfifo(path)
    with pytest.raises(NotAHistory, match=r"is not an EmoDesk history .*nothing was changed"):
        SessionStore(path, named_by_user=True)


@pytest.mark.parametrize("existing", ["missing", "empty"])
def test_a_named_new_or_empty_file_becomes_the_history(tmp_path: Path, existing: str) -> None:
    path = tmp_path / "mine.db"
    if existing == "empty":
        path.touch()
    with SessionStore(path, named_by_user=True) as store:
        store.start_session(make_meta())
        assert len(store.sessions()) == 1
    with SessionStore(path, named_by_user=True) as store:
        assert len(store.sessions()) == 1
