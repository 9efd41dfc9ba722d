"""The history's table layout and its migrations.

`PRAGMA user_version` holds the number of migrations applied. Each migration runs in
its own transaction together with the version bump, so a crash mid-migration leaves the
previous version intact. Never edit a released migration: append a new one.

No table has a column for audio: the history holds text and numbers only.
"""

from __future__ import annotations

import sqlite3

# Version 1: the first layout (sessions, readings, transcript lines).
_V1 = """
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    started_utc     TEXT NOT NULL,
    ended_utc       TEXT,
    voice           TEXT NOT NULL,
    model           TEXT NOT NULL,
    profile         TEXT NOT NULL,
    consent_version TEXT
);
CREATE TABLE readings (
    id           INTEGER PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn         INTEGER NOT NULL,
    source       TEXT NOT NULL,
    t_start_s    REAL NOT NULL,
    t_end_s      REAL NOT NULL,
    utc          TEXT NOT NULL,
    emotion      TEXT NOT NULL,
    confidence   REAL NOT NULL,
    energy_level TEXT NOT NULL,
    arousal      REAL,
    valence      REAL,
    trend        TEXT NOT NULL,
    escalate     INTEGER NOT NULL
);
CREATE TABLE transcript (
    id         INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn       INTEGER NOT NULL,
    role       TEXT NOT NULL,
    text       TEXT NOT NULL,
    utc        TEXT NOT NULL
);
"""

# Version 2: consent decisions (time, text version, granted), the session's language,
# and indexes for per-session reads and retention.
_V2 = """
CREATE TABLE consent_records (
    id      INTEGER PRIMARY KEY,
    utc     TEXT NOT NULL,
    version TEXT NOT NULL,
    granted INTEGER NOT NULL
);
ALTER TABLE sessions ADD COLUMN language TEXT NOT NULL DEFAULT '';
CREATE INDEX readings_by_session ON readings(session_id, id);
CREATE INDEX transcript_by_session ON transcript(session_id, id);
CREATE INDEX sessions_by_end ON sessions(ended_utc);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)
TABLES = ("sessions", "readings", "transcript", "consent_records")


def user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations the file lacks, up to `target`; returns how many ran.

    `conn` must be in autocommit mode (isolation_level=None). The caller has already
    refused files newer than SCHEMA_VERSION.
    """
    current = user_version(conn)
    applied = 0
    for number in range(current + 1, target + 1):
        script = MIGRATIONS[number - 1]
        # executescript() commits first; BEGIN IMMEDIATE ... COMMIT inside the script
        # makes the DDL and the version bump one transaction.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied += 1
    return applied
