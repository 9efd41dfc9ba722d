"""Small builders for the store tests: a session's metadata and timeline entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emodesk.core.emotion import EmotionReading
from emodesk.core.export import SessionMetadata, new_session_id
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import Trend

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def make_meta(started: datetime = T0, session_id: str | None = None) -> SessionMetadata:
    return SessionMetadata(
        session_id=session_id or new_session_id(),
        started_utc=started,
        voice="Puck",
        model="gemini-live-2.5-flash-preview",
        profile="support",
        consent_version="2026-01",
        language="en-US",
    )


def make_entry(turn: int, started: datetime = T0, acoustic: bool = True) -> TimelineEntry:
    """A reading with values that have at most 3 decimals (they survive export exactly)."""
    emotions = ("happy", "sad", "angry", "anxious", "neutral")
    reading = EmotionReading(
        turn=turn,
        source="acoustic" if acoustic else "model",
        t_start_s=turn * 4.0,
        t_end_s=turn * 4.0 + 2.5,
        emotion=emotions[turn % len(emotions)],
        confidence=0.125 + (turn % 7) / 10,
        energy_level=("high", "medium", "low")[turn % 3],
        arousal=-0.25 if acoustic else None,
        valence=0.5 if acoustic else None,
        utc=started + timedelta(seconds=turn * 4, milliseconds=250),
    )
    trends = list(Trend)
    return TimelineEntry(reading, trends[turn % len(trends)], escalate=turn % 5 == 4)
