"""A disk that refuses writes turns into StoreError with a clear sentence; what was
committed before stays readable and the file opens normally afterwards."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from emodesk.store import SessionStore
from emodesk.store.errors import store_error

REPO = Path(__file__).resolve().parents[2]

# The child limits the size of any file it writes (RLIMIT_FSIZE): the kernel refuses
# the write past the limit, as a full disk does. SIGXFSZ would kill it, so it is ignored
# and the write fails with an error instead.
_FULL_DISK_CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    from emodesk.store import SessionStore, StoreError
    from tests.store.factories import make_entry, make_meta

    store = SessionStore(sys.argv[1])
    meta = make_meta()
    store.start_session(meta)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))
    committed = 0
    try:
        for turn in range(100_000):
            store.add_reading(meta.session_id, make_entry(turn))
            committed += 1
            store.add_transcript(meta.session_id, turn, "user", "x" * 2000)
    except StoreError as exc:
        print("StoreError:", exc)
    print("committed", committed)
    print("readable", len(store.readings(meta.session_id)))
    store.close()
    """
)


def test_a_refused_write_is_a_store_error_and_nothing_committed_is_lost(
    history_path: Path,
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_CHILD, str(history_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert child.returncode == 0, child.stdout + child.stderr
    lines = child.stdout.splitlines()
    assert lines[0].startswith(f"StoreError: The history at {history_path} could not be used")
    committed = int(lines[1].removeprefix("committed "))
    assert committed > 10
    assert lines[2] == f"readable {committed}"

    with SessionStore(history_path) as store:
        assert store.open_report.recovered_from is None
        [summary] = store.sessions()
        assert summary.reading_count == committed


def test_sqlite_full_reads_as_a_full_disk(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "small.sqlite3", isolation_level=None)
    try:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.execute("PRAGMA max_page_count = 3")  # SQLite's own "disk full" (SQLITE_FULL)
        try:
            conn.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
        except sqlite3.Error as exc:
            error = store_error(exc, "saving a reading", tmp_path / "small.sqlite3")
        else:
            raise AssertionError("the insert should not fit")
    finally:
        conn.close()
    assert str(error) == (
        f"The history at {tmp_path / 'small.sqlite3'} could not be used while saving a reading:"
        " the disk is full."
    )
