"""A history with several days of sessions, written through the real store: for the
history window's and the report's tests, and the screenshots."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from emodesk.core.emotion import EmotionReading
from emodesk.core.export import SessionMetadata
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import Trend
from emodesk.store import SessionStore

EMOTIONS = ("happy", "sad", "angry", "anxious", "neutral")
# Said in the first session of each day: none of it may reach the file as it was said.
PERSONAL_LINE = "I'm ada.lovelace@example.com, call me on +44 20 7946 0958"
PROFILES = ("wellness", "general", "support")


def session_start(day: date, hour: int) -> datetime:
    """A local-time hour on `day`, as an aware UTC instant."""
    return datetime(day.year, day.month, day.day, hour, 15).astimezone().astimezone(UTC)


def fill_history(
    store: SessionStore, today: date, days: int = 9, *, seed: int = 14, skip: tuple[int, ...] = (3,)
) -> list[str]:
    """Sessions on each of the `days` days up to `today` (days `skip` back have none):
    one to three a day, each with 4-8 turns of two readings (model and acoustic) and
    two transcript lines; the last three days' sessions end persistent negative.
    Returns the session ids, oldest first."""
    rng = random.Random(seed)
    ids: list[str] = []
    for back in range(days - 1, -1, -1):
        if back in skip:
            continue
        day = today - timedelta(days=back)
        for n in range(1 + (back % 3)):
            started = session_start(day, 9 + 4 * n)
            sid = f"{day:%Y%m%d}{n:02d}" + "ab" * 3
            store.start_session(
                SessionMetadata(sid, started, "Puck", "emulator", PROFILES[back % 3], "1", "en")
            )
            negative = back < 3
            turns = rng.randint(4, 8)
            for turn in range(1, turns + 1):
                t0 = (turn - 1) * 12.0
                for source in ("model", "acoustic"):
                    if negative:
                        emotion = rng.choice(("sad", "anxious", "angry", "sad"))
                    else:
                        emotion = rng.choice((*EMOTIONS, "neutral", "happy"))
                    acoustic = source == "acoustic"
                    reading = EmotionReading(
                        turn=turn,
                        source=source,
                        t_start_s=t0,
                        t_end_s=t0 + 5.0,
                        emotion=emotion,
                        confidence=round(rng.uniform(0.4, 0.95), 2),
                        energy_level=rng.choice(("high", "medium", "low")),
                        arousal=round(rng.uniform(-0.8, 0.8), 2) if acoustic else None,
                        valence=(
                            round(
                                rng.uniform(-0.9, -0.1) if negative else rng.uniform(-0.4, 0.8), 2
                            )
                            if acoustic
                            else None
                        ),
                        utc=started + timedelta(seconds=t0 + 5),
                    )
                    trend = Trend.PERSISTENT_NEGATIVE if negative and turn >= 3 else Trend.STABLE
                    store.add_reading(sid, TimelineEntry(reading, trend, negative and turn >= 4))
                said = (
                    PERSONAL_LINE
                    if (turn == 1 and n == 0)
                    else f"This is what I said in turn {turn}."
                )
                store.add_transcript(sid, turn, "user", said, started + timedelta(seconds=t0 + 5))
                store.add_transcript(
                    sid,
                    turn,
                    "model",
                    f"A reply to turn {turn}.",
                    started + timedelta(seconds=t0 + 9),
                )
            store.end_session(sid, started + timedelta(seconds=turns * 12.0 + 20))
            ids.append(sid)
    return ids
