"""Sessions, readings, transcripts and consent decisions go in and come back unchanged."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emodesk.core.consent import ConsentRecord
from emodesk.store import SessionNotFound, SessionStore, StoreError, default_history_path
from tests.store.factories import T0, make_entry, make_meta


def test_a_new_file_opens_without_a_report(store: SessionStore, history_path: Path) -> None:
    assert store.open_report.path == history_path
    assert store.open_report.recovered_from is None
    assert store.open_report.message == ""
    assert history_path.exists()


def test_readings_come_back_equal_and_in_order(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    entries = [make_entry(turn, acoustic=turn % 2 == 0) for turn in range(12)]
    for entry in entries:
        store.add_reading(meta.session_id, entry)
    assert store.readings(meta.session_id) == entries


def test_session_metadata_round_trips(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    assert store.session_metadata(meta.session_id) == meta


def test_consent_given_during_a_session_is_recorded_on_it(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(dataclasses.replace(meta, consent_version=None))
    store.set_session_consent(meta.session_id, "2026-11")
    assert store.session_metadata(meta.session_id).consent_version == "2026-11"


def test_sessions_summarise_newest_first_with_counts_and_end(store: SessionStore) -> None:
    older, newer = make_meta(T0), make_meta(T0 + timedelta(hours=1))
    store.start_session(older)
    store.start_session(newer)
    for turn in range(3):
        store.add_reading(older.session_id, make_entry(turn))
    ended = T0 + timedelta(minutes=20)
    store.end_session(older.session_id, ended)

    summaries = store.sessions()

    assert [s.session_id for s in summaries] == [newer.session_id, older.session_id]
    assert summaries[1].reading_count == 3
    assert summaries[1].ended_utc == ended
    assert summaries[1].started_utc == T0
    assert (summaries[1].voice, summaries[1].model, summaries[1].profile) == (
        older.voice,
        older.model,
        older.profile,
    )
    assert summaries[1].consent_version == older.consent_version
    assert summaries[0].reading_count == 0
    assert summaries[0].ended_utc is None


def test_transcript_keeps_order_and_text(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    lines = [(1, "user", "Hello, can you hear me?"), (1, "model", "Yes — loud and clear. ✓")]
    for turn, role, text in lines:
        store.add_transcript(meta.session_id, turn, role, text)
    assert store.transcript(meta.session_id) == lines


def test_transcript_refuses_an_unknown_role(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    with pytest.raises(StoreError, match="role"):
        store.add_transcript(meta.session_id, 1, "system", "text")


def test_consent_decisions_are_kept_in_order(store: SessionStore) -> None:
    records = [
        ConsentRecord(granted=True, version="2026-01", utc=T0),
        ConsentRecord(granted=False, version="2026-01", utc=T0 + timedelta(days=1)),
    ]
    for record in records:
        store.record_consent(record)
    assert store.consent_records() == records


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.add_reading("nope", make_entry(1)),
        lambda s: s.add_transcript("nope", 1, "user", "hi"),
        lambda s: s.end_session("nope"),
        lambda s: s.session_metadata("nope"),
        lambda s: s.set_session_consent("nope", "v1"),
    ],
    ids=["reading", "transcript", "end", "metadata", "consent"],
)
def test_an_unknown_session_is_a_typed_error(store: SessionStore, write) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SessionNotFound, match="nope"):
        write(store)


def test_starting_the_same_session_twice_is_a_store_error(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    with pytest.raises(StoreError):
        store.start_session(meta)


def test_a_naive_time_is_refused(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    with pytest.raises(StoreError, match="timezone"):
        store.end_session(meta.session_id, datetime(2026, 1, 1))


def test_a_closed_store_refuses_calls(store: SessionStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.sessions()
    store.close()  # a second close is harmless


def test_the_default_file_lives_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_history_path() == tmp_path / "xdg" / "emodesk" / "history.sqlite3"
    with SessionStore() as opened:
        assert opened.path == default_history_path()
        assert opened.path.exists()


def test_every_write_is_committed_before_the_call_returns(
    store: SessionStore, history_path: Path
) -> None:
    meta = make_meta()
    store.start_session(meta)
    store.add_reading(meta.session_id, make_entry(1))
    store.add_transcript(meta.session_id, 1, "user", "hi")
    # Another connection sees the rows while the store is still open: nothing is held
    # in an open transaction.
    with sqlite3.connect(history_path) as other:
        assert other.execute("SELECT count(*) FROM readings").fetchone() == (1,)
        assert other.execute("SELECT count(*) FROM transcript").fetchone() == (1,)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_no_column_can_hold_audio(store: SessionStore, history_path: Path) -> None:
    with sqlite3.connect(history_path) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        columns = [
            (table, row[1], row[2].upper())
            for table in tables
            for row in conn.execute(f"PRAGMA table_info({table})")
        ]
    assert {"sessions", "readings", "transcript", "consent_records"} <= set(tables)
    assert [c for c in columns if c[2] == "BLOB" or "audio" in c[1].lower()] == []


def test_writes_from_many_threads_and_an_export_at_once(
    store: SessionStore, tmp_path: Path
) -> None:
    meta = make_meta()
    store.start_session(meta)
    per_thread, threads = 50, 4
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for i in range(per_thread):
                store.add_reading(meta.session_id, make_entry(offset * per_thread + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def export() -> None:
        try:
            for n in range(5):
                store.export_session(meta.session_id, tmp_path / f"out{n}.csv")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(k,)) for k in range(threads)]
    workers.append(threading.Thread(target=export))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not any(worker.is_alive() for worker in workers)
    assert errors == []
    turns = sorted(entry.reading.turn for entry in store.readings(meta.session_id))
    assert turns == list(range(per_thread * threads))


def test_times_are_stored_in_utc(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    local = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).astimezone()
    store.end_session(meta.session_id, local)
    assert store.sessions()[0].ended_utc == local
    assert store.sessions()[0].ended_utc.tzinfo is UTC  # type: ignore[union-attr]
