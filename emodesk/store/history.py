"""The history read over days: one digest per session (profile, duration, turns, emotion
mix, last trend, escalations) and the readings of a time range, for the history window
and the report (`emodesk.core.history` turns them into per-day figures)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from emodesk.core.history import ReadingPoint, SessionDigest

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_FORMAT)


def _parse(text: str) -> datetime:
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)


def session_digests(
    conn: sqlite3.Connection,
    since: datetime | None = None,
    until: datetime | None = None,
    session_id: str | None = None,
) -> list[SessionDigest]:
    """Sessions that started in [since, until) (or the one `session_id`), newest first.
    A session a crash left open lasts until its last reading or transcript line."""
    where, args = [], []
    if since is not None:
        where.append("s.started_utc >= ?")
        args.append(_text(since))
    if until is not None:
        where.append("s.started_utc < ?")
        args.append(_text(until))
    if session_id is not None:
        where.append("s.id = ?")
        args.append(session_id)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    rows = conn.execute(
        "SELECT s.id, s.started_utc, s.ended_utc, s.profile,"
        " max(s.started_utc,"
        "     coalesce((SELECT max(utc) FROM readings WHERE session_id = s.id), ''),"
        "     coalesce((SELECT max(utc) FROM transcript WHERE session_id = s.id), '')),"
        " (SELECT count(*) FROM (SELECT turn FROM readings WHERE session_id = s.id"
        "   UNION SELECT turn FROM transcript WHERE session_id = s.id)),"
        " (SELECT trend FROM readings WHERE session_id = s.id ORDER BY id DESC LIMIT 1),"
        " (SELECT count(*) FROM readings WHERE session_id = s.id AND escalate)"
        f" FROM sessions s {clause} ORDER BY s.started_utc DESC, s.rowid DESC",
        args,
    ).fetchall()
    mixes: dict[str, dict[str, int]] = {}
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for sid, emotion, count in conn.execute(
            f"SELECT session_id, emotion, count(*) FROM readings WHERE session_id IN ({marks})"
            " GROUP BY session_id, emotion",
            chunk,
        ):
            mixes.setdefault(sid, {})[emotion] = count
    digests = []
    for sid, started, ended, profile, last_activity, turns, trend, escalations in rows:
        begun = _parse(started)
        finished = _parse(ended) if ended is not None else None
        last = finished if finished is not None else _parse(last_activity)
        digests.append(
            SessionDigest(
                session_id=sid,
                started_utc=begun,
                ended_utc=finished,
                profile=profile,
                duration_s=max(0.0, (last - begun).total_seconds()),
                turns=turns,
                mix=mixes.get(sid, {}),
                last_trend=trend or "",
                escalations=escalations,
            )
        )
    return digests


def reading_points(
    conn: sqlite3.Connection, since: datetime, until: datetime
) -> list[ReadingPoint]:
    """Every reading made in [since, until), oldest first."""
    rows = conn.execute(
        "SELECT utc, source, emotion, arousal, valence FROM readings"
        " WHERE utc >= ? AND utc < ? ORDER BY utc, id",
        (_text(since), _text(until)),
    ).fetchall()
    return [ReadingPoint(_parse(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
