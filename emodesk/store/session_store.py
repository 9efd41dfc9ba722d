"""The session history: sessions, emotion readings, transcript lines and consent
decisions in one sqlite3 file, each write committed as it happens.

Threads: one connection (check_same_thread=False) serialised by a lock serves the short
calls made from the asyncio loop. The bulk calls (export, retention, delete_all) open
their own connection for their duration, so an export running in an executor reads a
WAL snapshot without holding the lock that a reading arriving on the loop needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import platformdirs

from emodesk.core.consent import ConsentRecord
from emodesk.core.emotion import EmotionReading
from emodesk.core.export import (
    ExportError,
    SessionMetadata,
    timeline_csv,
    timeline_json,
    write_text_atomic,
)
from emodesk.core.history import ReadingPoint, SessionDigest
from emodesk.core.privacy import make_private
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import Trend
from emodesk.store.checkpoint import SAFETY_NET_PAGES, Checkpointer
from emodesk.store.errors import OpenReport, SessionNotFound, StoreError, store_error
from emodesk.store.history import reading_points, session_digests
from emodesk.store.opening import connect, kept_copies, open_history
from emodesk.store.redaction import Redactor

log = logging.getLogger(__name__)

HISTORY_FILE_NAME = "history.sqlite3"
TRANSCRIPT_ROLES = frozenset({"user", "model"})
EXPORT_FORMATS = frozenset({"csv", "json"})


def default_history_path() -> Path:
    return Path(platformdirs.user_data_dir("emodesk")) / HISTORY_FILE_NAME


def _make_data_folder_private(folder: Path) -> None:
    """The app's own data folder, as an older version may have left it: readable by its
    owner only (files the process creates are, by the umask the command line sets)."""
    changed = make_private([folder])
    if changed:
        log.info("made private (owner only): %s", ", ".join(str(path) for path in changed))


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    started_utc: datetime
    ended_utc: datetime | None
    voice: str
    model: str
    profile: str
    consent_version: str | None
    reading_count: int


def _utc_text(moment: datetime) -> str:
    """Fixed-width ISO 8601 with Z, so text order is time order in SQL comparisons."""
    if moment.tzinfo is None:
        raise StoreError("Times given to the history must be timezone-aware.")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc_parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class SessionStore:
    """The history file. Every method raises StoreError (with a sentence for the UI) when
    the file cannot be read or written; none lets a sqlite3 or OS error through."""

    open_report: OpenReport  # what happened at open: shown to the user when not empty

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        named_by_user: bool = False,
        redactor: Redactor | None = None,
    ) -> None:
        """`named_by_user`: the user chose `path` (`--db`); if it cannot serve as the
        history it is refused with NotAHistory and left as it was, not set aside.
        `redactor`: masks personal data in transcript lines before they are stored
        (`emodesk.store.redaction`); a default one unless given. `redactor = None` on the
        store (the "keep transcripts verbatim" setting) stores them as said."""
        self.path = Path(path) if path is not None else default_history_path()
        self.redactor: Redactor | None = redactor if redactor is not None else Redactor()
        self._lock = threading.Lock()
        if self.path.absolute() == default_history_path().absolute():
            _make_data_folder_private(self.path.parent)
        self._conn, self.open_report = open_history(self.path, named_by_user=named_by_user)
        try:
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_NET_PAGES}")
        except sqlite3.Error as exc:
            self._conn.close()
            raise store_error(exc, "opening it", self.path) from exc
        # Regular WAL checkpoints run here, off the loop (public for tests and the bench).
        self.checkpointer = Checkpointer(self.path)
        self._open_sessions: set[str] = set()
        self._closed = False
        self._changes_seen = self._conn.total_changes

    # -- plumbing ---------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreError("The history is closed.")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise store_error(exc, action, self.path) from exc
            if self._conn.total_changes != self._changes_seen:
                self._changes_seen = self._conn.total_changes
                self.checkpointer.wrote()

    @contextlib.contextmanager
    def _bulk(self, action: str) -> Iterator[sqlite3.Connection]:
        """A connection of its own for a slow call running off the loop's thread."""
        if self._closed:
            raise StoreError("The history is closed.")
        try:
            conn = connect(self.path)
        except sqlite3.Error as exc:
            raise store_error(exc, action, self.path) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise store_error(exc, action, self.path) from exc
        finally:
            conn.close()

    # -- writes from the loop -----------------------------------------------------

    def start_session(self, meta: SessionMetadata) -> None:
        with self._locked("starting a session") as conn:
            conn.execute(
                "INSERT INTO sessions (id, started_utc, ended_utc, voice, model, profile,"
                " consent_version, language) VALUES (?, ?, NULL, ?, ?, ?, ?, ?)",
                (
                    meta.session_id,
                    _utc_text(meta.started_utc),
                    meta.voice,
                    meta.model,
                    meta.profile,
                    meta.consent_version,
                    meta.language,
                ),
            )
            self._open_sessions.add(meta.session_id)

    def end_session(self, session_id: str, ended_utc: datetime | None = None) -> None:
        ended = _utc_text(ended_utc if ended_utc is not None else _now())
        with self._locked("ending a session") as conn:
            changed = conn.execute(
                "UPDATE sessions SET ended_utc = ? WHERE id = ?", (ended, session_id)
            ).rowcount
            self._open_sessions.discard(session_id)
        if not changed:
            raise SessionNotFound(f"No session {session_id!r} in the history.")

    def set_session_consent(self, session_id: str, consent_version: str) -> None:
        """Consent given during a session: its readings were recorded under this version
        (the row said None when the session began without consent). A withdrawal keeps
        the version: the readings before it were recorded with consent."""
        with self._locked("saving the session's consent") as conn:
            changed = conn.execute(
                "UPDATE sessions SET consent_version = ? WHERE id = ?",
                (consent_version, session_id),
            ).rowcount
        if not changed:
            raise SessionNotFound(f"No session {session_id!r} in the history.")

    def record_consent(self, record: ConsentRecord) -> None:
        with self._locked("saving the consent decision") as conn:
            conn.execute(
                "INSERT INTO consent_records (utc, version, granted) VALUES (?, ?, ?)",
                (_utc_text(record.utc), record.version, int(record.granted)),
            )

    def add_reading(self, session_id: str, entry: TimelineEntry) -> None:
        reading = entry.reading
        row = (
            session_id,
            reading.turn,
            reading.source.value,
            reading.t_start_s,
            reading.t_end_s,
            _utc_text(reading.utc),
            reading.emotion.value,
            reading.confidence,
            reading.energy_level.value,
            reading.arousal,
            reading.valence,
            Trend(entry.trend).value,
            int(entry.escalate),
        )
        with self._locked("saving a reading") as conn:
            try:
                conn.execute(
                    "INSERT INTO readings (session_id, turn, source, t_start_s, t_end_s, utc,"
                    " emotion, confidence, energy_level, arousal, valence, trend, escalate)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            except sqlite3.IntegrityError as exc:
                raise SessionNotFound(f"No session {session_id!r} in the history.") from exc

    def add_transcript(
        self, session_id: str, turn: int, role: str, text: str, utc: datetime | None = None
    ) -> None:
        if role not in TRANSCRIPT_ROLES:
            raise StoreError(f"Transcript role must be 'user' or 'model', got {role!r}.")
        when = _utc_text(utc if utc is not None else _now())
        redactor = self.redactor
        if redactor is not None:  # before the lock: the reads never wait for it
            text = redactor.redact(text)
        with self._locked("saving the transcript") as conn:
            try:
                conn.execute(
                    "INSERT INTO transcript (session_id, turn, role, text, utc)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (session_id, turn, role, text, when),
                )
            except sqlite3.IntegrityError as exc:
                raise SessionNotFound(f"No session {session_id!r} in the history.") from exc

    # -- reads --------------------------------------------------------------------

    def sessions(self) -> list[SessionSummary]:
        """Every session, newest first."""
        with self._locked("listing sessions") as conn:
            rows = conn.execute(
                "SELECT s.id, s.started_utc, s.ended_utc, s.voice, s.model, s.profile,"
                " s.consent_version,"
                " (SELECT count(*) FROM readings r WHERE r.session_id = s.id)"
                " FROM sessions s ORDER BY s.started_utc DESC, s.rowid DESC"
            ).fetchall()
        return [
            SessionSummary(
                session_id=row[0],
                started_utc=_utc_parse(row[1]),
                ended_utc=None if row[2] is None else _utc_parse(row[2]),
                voice=row[3],
                model=row[4],
                profile=row[5],
                consent_version=row[6],
                reading_count=row[7],
            )
            for row in rows
        ]

    def session_metadata(self, session_id: str) -> SessionMetadata:
        with self._locked("reading a session") as conn:
            return self._metadata(conn, session_id)

    def _metadata(self, conn: sqlite3.Connection, session_id: str) -> SessionMetadata:
        row = conn.execute(
            "SELECT id, started_utc, voice, model, profile, consent_version, language"
            " FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            raise SessionNotFound(f"No session {session_id!r} in the history.")
        return SessionMetadata(
            session_id=row[0],
            started_utc=_utc_parse(row[1]),
            voice=row[2],
            model=row[3],
            profile=row[4],
            consent_version=row[5],
            language=row[6],
        )

    def readings(self, session_id: str) -> list[TimelineEntry]:
        with self._locked("reading a session's readings") as conn:
            return self._readings(conn, session_id)

    @staticmethod
    def _readings(conn: sqlite3.Connection, session_id: str) -> list[TimelineEntry]:
        rows = conn.execute(
            "SELECT turn, source, t_start_s, t_end_s, utc, emotion, confidence, energy_level,"
            " arousal, valence, trend, escalate FROM readings WHERE session_id = ? ORDER BY id",
            (session_id,),
        ).fetchall()
        return [
            TimelineEntry(
                reading=EmotionReading(
                    turn=row[0],
                    source=row[1],
                    t_start_s=row[2],
                    t_end_s=row[3],
                    utc=_utc_parse(row[4]),
                    emotion=row[5],
                    confidence=row[6],
                    energy_level=row[7],
                    arousal=row[8],
                    valence=row[9],
                ),
                trend=Trend(row[10]),
                escalate=bool(row[11]),
            )
            for row in rows
        ]

    def transcript(self, session_id: str) -> list[tuple[int, str, str]]:
        """(turn, role, text) in the order they were added."""
        with self._locked("reading a transcript") as conn:
            rows = conn.execute(
                "SELECT turn, role, text FROM transcript WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
        return [(row[0], row[1], row[2]) for row in rows]

    def session_digests(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[SessionDigest]:
        """Sessions that started in [since, until), newest first, each with its profile,
        duration, turn count, emotion mix, last trend and escalations."""
        with self._locked("listing sessions") as conn:
            return session_digests(conn, since, until)

    def session_digest(self, session_id: str) -> SessionDigest:
        with self._locked("reading a session") as conn:
            found = session_digests(conn, session_id=session_id)
        if not found:
            raise SessionNotFound(f"No session {session_id!r} in the history.")
        return found[0]

    def reading_points(self, since: datetime, until: datetime) -> list[ReadingPoint]:
        """Every reading made in [since, until), oldest first (for per-day figures)."""
        with self._locked("reading the history") as conn:
            return reading_points(conn, since, until)

    def consent_records(self) -> list[ConsentRecord]:
        """Every consent decision, oldest first."""
        with self._locked("reading consent decisions") as conn:
            rows = conn.execute(
                "SELECT granted, version, utc FROM consent_records ORDER BY id"
            ).fetchall()
        return [
            ConsentRecord(granted=bool(row[0]), version=row[1], utc=_utc_parse(row[2]))
            for row in rows
        ]

    # -- bulk calls (run these in an executor) --------------------------------------

    def export_session(
        self, session_id: str, path: str | os.PathLike[str], fmt: str = "csv"
    ) -> None:
        """Write one session's timeline as "csv" or "json" (atomically)."""
        if fmt not in EXPORT_FORMATS:
            raise StoreError(f"Export format must be 'csv' or 'json', got {fmt!r}.")
        with self._bulk("exporting a session") as conn:
            conn.execute("BEGIN")  # one snapshot for metadata and readings
            meta = self._metadata(conn, session_id)
            entries = self._readings(conn, session_id)
            conn.execute("COMMIT")
        if fmt == "csv":
            text = timeline_csv(meta.session_id, entries)
        else:
            text = timeline_json(meta, entries)
        try:
            write_text_atomic(path, text)
        except ExportError as exc:
            raise StoreError(str(exc)) from exc

    def export_transcript(self, session_id: str, path: str | os.PathLike[str]) -> None:
        """Write one session's transcript as plain text (atomically), one line per turn
        and role; masked by the redactor in use, whatever was stored."""
        with self._bulk("exporting a transcript") as conn:
            conn.execute("BEGIN")
            meta = self._metadata(conn, session_id)
            rows = conn.execute(
                "SELECT turn, role, text FROM transcript WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
            conn.execute("COMMIT")
        redactor = self.redactor
        lines = [
            f"EmoDesk transcript · session {meta.session_id} · started"
            f" {meta.started_utc:%Y-%m-%d %H:%M} UTC · profile {meta.profile}",
            "",
        ]
        for turn, role, text in rows:
            said = redactor.redact(text) if redactor is not None else text
            lines.append(f"[turn {turn}] {'You' if role == 'user' else 'Assistant'}: {said}")
        try:
            write_text_atomic(path, "\n".join(lines) + "\n")
        except ExportError as exc:
            raise StoreError(str(exc)) from exc

    def mask_stored_transcripts(self) -> int:
        """Mask the transcript lines already stored (by an older version, or while the
        setting kept them verbatim) with the redactor in use; returns how many changed.
        The old text is overwritten in the file and its WAL (secure_delete, checkpoint)."""
        redactor = self.redactor
        if redactor is None:
            return 0
        with self._bulk("masking stored transcripts") as conn:
            rows = conn.execute("SELECT id, text FROM transcript").fetchall()
            changed = [(masked, row_id) for row_id, text in rows
                       if (masked := redactor.redact(text)) != text]  # fmt: skip
            if changed:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("UPDATE transcript SET text = ? WHERE id = ?", changed)
                conn.execute("COMMIT")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(changed)

    def delete_session(self, session_id: str) -> None:
        """Delete one session with its readings and transcript (the connection zeroes
        freed pages: secure_delete, so the text does not linger in the file)."""
        with self._bulk("deleting a session") as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM readings WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM transcript WHERE session_id = ?", (session_id,))
            deleted = conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if not deleted:
            raise SessionNotFound(f"No session {session_id!r} in the history.")
        with self._lock:
            self._open_sessions.discard(session_id)

    def apply_retention(self, keep_days: int, now: datetime | None = None) -> int:
        """Delete sessions whose last activity (end, or last reading or transcript line
        for a session a crash left open) is more than `keep_days` days before `now`; 0
        keeps nothing. Sessions this store started and has not ended are always kept.
        Returns the number of sessions deleted."""
        if isinstance(keep_days, bool) or not isinstance(keep_days, int) or keep_days < 0:
            raise StoreError(f"keep_days must be a whole number >= 0, got {keep_days!r}.")
        cutoff = _utc_text((now if now is not None else _now()) - timedelta(days=keep_days))
        with self._lock:
            active = sorted(self._open_sessions)
        placeholders = ",".join("?" * len(active))
        keep_active = f"AND s.id NOT IN ({placeholders})" if active else ""
        with self._bulk("applying the retention setting") as conn:
            conn.execute("BEGIN IMMEDIATE")
            deleted = conn.execute(
                "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s WHERE"
                " coalesce(s.ended_utc,"
                "  max(s.started_utc,"
                "      coalesce((SELECT max(utc) FROM readings WHERE session_id = s.id), ''),"
                "      coalesce((SELECT max(utc) FROM transcript WHERE session_id = s.id), '')"
                "  )) <= ? " + keep_active + ")",
                (cutoff, *active),
            ).rowcount
            conn.execute("COMMIT")
        return deleted

    def delete_all(self) -> None:
        """Delete every session, reading, transcript line and consent decision, rewrite
        the file so nothing deleted lingers in free pages or the WAL, and remove copies
        kept from earlier damaged files."""
        with self._bulk("deleting all data") as conn:
            conn.execute("BEGIN IMMEDIATE")
            for table in ("readings", "transcript", "sessions", "consent_records"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("COMMIT")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with self._lock:
            self._open_sessions.clear()
        for kept in kept_copies(self.path):
            try:
                kept.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise store_error(exc, "removing a kept copy", self.path) from exc

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.checkpointer.stop()
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
