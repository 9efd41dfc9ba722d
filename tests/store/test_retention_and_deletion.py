"""Retention deletes old sessions with their rows; "delete all my data" leaves nothing,
not even in the file's free pages or the WAL."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from emodesk.core.consent import ConsentRecord
from emodesk.store import SessionStore, StoreError
from tests.store.factories import T0, make_entry, make_meta

NOW = T0 + timedelta(days=30)


def _row_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("sessions", "readings", "transcript", "consent_records")
        }
    finally:
        conn.close()


def _session(store: SessionStore, started_days_ago: float, ended: bool = True) -> str:
    started = NOW - timedelta(days=started_days_ago)
    meta = make_meta(started)
    store.start_session(meta)
    for turn in range(3):
        store.add_reading(meta.session_id, make_entry(turn, started))
        store.add_transcript(meta.session_id, turn, "user", f"turn {turn}", started)
    if ended:
        store.end_session(meta.session_id, started + timedelta(hours=1))
    return meta.session_id


def _left_open_by_a_crash(path: Path, started_days_ago: float) -> str:
    """A session whose process died before `end_session`."""
    crashed = SessionStore(path)
    session_id = _session(crashed, started_days_ago, ended=False)
    crashed.close()
    return session_id


def test_retention_deletes_sessions_older_than_the_limit(history_path: Path) -> None:
    crashed_old = _left_open_by_a_crash(history_path, started_days_ago=5)
    crashed_recent = _left_open_by_a_crash(history_path, started_days_ago=1)
    with SessionStore(history_path) as store:
        old = _session(store, started_days_ago=10)
        recent = _session(store, started_days_ago=2)
        running = _session(store, started_days_ago=9, ended=False)

        deleted = store.apply_retention(keep_days=3, now=NOW)

        assert deleted == 2
        kept = {s.session_id for s in store.sessions()}
        assert kept == {recent, running, crashed_recent}
        assert old not in kept and crashed_old not in kept
        for gone in (old, crashed_old):
            assert store.readings(gone) == []
            assert store.transcript(gone) == []
    assert _row_counts(history_path)["readings"] == 9


def test_keep_zero_days_keeps_only_the_running_session(history_path: Path) -> None:
    crashed = _left_open_by_a_crash(history_path, started_days_ago=0.01)
    with SessionStore(history_path) as store:
        store.record_consent(ConsentRecord(granted=True, version="2026-01", utc=T0))
        _session(store, started_days_ago=0.5)
        running = _session(store, started_days_ago=0.1, ended=False)

        assert store.apply_retention(keep_days=0, now=NOW + timedelta(hours=2)) == 2

        assert [s.session_id for s in store.sessions()] == [running]
        assert crashed not in {s.session_id for s in store.sessions()}
        # Consent decisions are the record of what the user agreed to: retention keeps
        # them; only "delete all my data" removes them.
        assert len(store.consent_records()) == 1


def test_a_session_ended_after_retention_becomes_deletable(store: SessionStore) -> None:
    running = _session(store, started_days_ago=3, ended=False)
    assert store.apply_retention(keep_days=0, now=NOW) == 0
    store.end_session(running, NOW - timedelta(days=1))
    assert store.apply_retention(keep_days=0, now=NOW) == 1
    assert store.sessions() == []


@pytest.mark.parametrize("bad", [-1, 1.5, True, "7"])
def test_retention_refuses_a_bad_number_of_days(store: SessionStore, bad: object) -> None:
    with pytest.raises(StoreError, match="keep_days"):
        store.apply_retention(bad)  # type: ignore[arg-type]


def test_delete_all_leaves_no_rows_and_a_smaller_file(history_path: Path) -> None:
    secret = "my-private-sentence-7f3a"
    with SessionStore(history_path) as store:
        for day in range(4):
            session_id = _session(store, started_days_ago=day)
            for turn in range(300):
                store.add_reading(session_id, make_entry(turn))
                store.add_transcript(session_id, turn, "user", f"{secret} {turn} " * 5)
        store.record_consent(ConsentRecord(granted=True, version="2026-01", utc=T0))
        running = make_meta()
        store.start_session(running)
        # A copy kept from an earlier damaged file also holds the user's data.
        kept = history_path.with_name("history.damaged-20260101T000000Z.sqlite3")
        kept.write_bytes(secret.encode() * 10)
        Path(f"{kept}-wal").write_bytes(secret.encode())
        size_before = _file_bytes(history_path)

        store.delete_all()

        assert _row_counts(history_path) == dict.fromkeys(_row_counts(history_path), 0)
        assert _file_bytes(history_path) < size_before / 4
        assert not kept.exists() and not Path(f"{kept}-wal").exists()
        # The store keeps working after the wipe.
        again = make_meta()
        store.start_session(again)
        store.add_reading(again.session_id, make_entry(1))
        assert [s.reading_count for s in store.sessions()] == [1]
    for leftover in history_path.parent.iterdir():
        assert secret.encode() not in leftover.read_bytes(), leftover


def _file_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
