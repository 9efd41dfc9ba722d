"""WAL checkpoints run on the store's own thread, so the loop's writes stay short and the
WAL does not grow through a long session."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from emodesk.store import SessionStore
from emodesk.store.checkpoint import WRITES_PER_CHECKPOINT
from tests.store.factories import make_entry, make_meta


def _wal_frames(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames)
    finally:
        conn.close()


def test_the_background_thread_checkpoints_and_the_wal_restarts(
    store: SessionStore, history_path: Path
) -> None:
    meta = make_meta()
    store.start_session(meta)  # write 1
    for turn in range(WRITES_PER_CHECKPOINT - 1):
        store.add_reading(meta.session_id, make_entry(turn))
    assert store.checkpointer.wait_for_runs(1, timeout=10)

    # Everything written so far is in the main file, so the next commit starts the
    # WAL from its beginning instead of appending after ~200 frames.
    store.add_reading(meta.session_id, make_entry(999))
    assert _wal_frames(history_path) < 10
    assert len(store.readings(meta.session_id)) == WRITES_PER_CHECKPOINT


def test_reads_do_not_count_as_writes(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    for _ in range(WRITES_PER_CHECKPOINT * 2):
        store.sessions()
    assert not store.checkpointer.wait_for_runs(1, timeout=0.2)


def test_close_stops_the_thread(history_path: Path) -> None:
    opened = SessionStore(history_path)
    opened.close()
    assert not opened.checkpointer._thread.is_alive()
