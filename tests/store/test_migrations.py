"""A history written by the first schema version opens in this one with its data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from emodesk.core.consent import ConsentRecord
from emodesk.store import SessionStore, schema
from emodesk.store.schema import SCHEMA_VERSION, migrate, user_version
from tests.store.factories import T0, make_entry, make_meta

# The first released schema and its rows, frozen as SQL (checked against that release's
# schema.py): built by today's `migrate(target=1)` it could not catch a changed V1.
VERSION_ONE = Path(__file__).parent / "data" / "history-v1.sql"


def _version_one_history(path: Path) -> None:
    """The layout and rows the first released version wrote (no language column, no
    consent table)."""
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(VERSION_ONE.read_text(encoding="utf-8"))
        assert user_version(conn) == 1
    finally:
        conn.close()


def test_version_one_is_migrated_with_its_data(history_path: Path) -> None:
    _version_one_history(history_path)

    with SessionStore(history_path) as store:
        assert store.open_report.recovered_from is None
        [summary] = store.sessions()
        assert (summary.session_id, summary.reading_count, summary.consent_version) == (
            "s1",
            1,
            "2026-01",
        )
        meta = store.session_metadata("s1")
        assert meta.language == ""  # unknown for sessions recorded before version 2
        [entry] = store.readings("s1")
        assert (entry.reading.emotion.value, entry.reading.confidence) == ("sad", 0.75)
        assert store.transcript("s1") == [(1, "user", "hello")]
        # What version 2 added works on the migrated file.
        store.record_consent(ConsentRecord(granted=True, version="2026-01", utc=T0))
        assert len(store.consent_records()) == 1
        new = make_meta()
        store.start_session(new)
        store.add_reading(new.session_id, make_entry(2))

    conn = sqlite3.connect(history_path)
    try:
        assert user_version(conn) == SCHEMA_VERSION
    finally:
        conn.close()


def test_every_migration_applies_from_an_empty_file(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "h.sqlite3", isolation_level=None)
    try:
        assert migrate(conn) == SCHEMA_VERSION
        assert migrate(conn) == 0  # already current: nothing runs twice
        assert user_version(conn) == SCHEMA_VERSION
    finally:
        conn.close()


def test_a_failing_migration_leaves_the_previous_version_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    conn = sqlite3.connect(tmp_path / "h.sqlite3", isolation_level=None)
    try:
        migrate(conn)
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            migrate(conn, target=SCHEMA_VERSION + 1)
        assert user_version(conn) == SCHEMA_VERSION
        assert not conn.in_transaction
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in tables
    finally:
        conn.close()
