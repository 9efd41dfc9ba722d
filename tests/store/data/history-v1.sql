-- EmoDesk history, schema version 1, as the first release wrote it (frozen: do not
-- regenerate it with today's code). One session, one reading, one transcript line.
PRAGMA user_version = 1;
BEGIN TRANSACTION;
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
INSERT INTO "readings" VALUES(1,'s1',1,'model',0.0,2.5,'2026-03-01T09:30:02.000000Z','sad',0.75,'low',NULL,NULL,'stable',0);
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    started_utc     TEXT NOT NULL,
    ended_utc       TEXT,
    voice           TEXT NOT NULL,
    model           TEXT NOT NULL,
    profile         TEXT NOT NULL,
    consent_version TEXT
);
INSERT INTO "sessions" VALUES('s1','2026-03-01T09:30:00.000000Z','2026-03-01T09:50:00.000000Z','Puck','gemini-x','support','2026-01');
CREATE TABLE transcript (
    id         INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn       INTEGER NOT NULL,
    role       TEXT NOT NULL,
    text       TEXT NOT NULL,
    utc        TEXT NOT NULL
);
INSERT INTO "transcript" VALUES(1,'s1',1,'user','hello','2026-03-01T09:30:01.000000Z');
COMMIT;
