"""Sessions over days: what the history window and the daily/weekly report show.

Plain data, standard library only. The store reads `SessionDigest`s (one per session)
and `ReadingPoint`s (one per reading) from its tables; here they become per-day figures
(`DayStats`: sessions, minutes, emotion mix, mean arousal and valence per source) and
the report (`build_report`: totals, the trend across the period, escalations and notes
such as "3 sessions in a row ended persistent negative").

Days are the user's local calendar days (`tz`), not UTC ones: a session at 23:30 belongs
to the evening it happened in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from emodesk.core.emotion import Emotion, Source
from emodesk.core.tracker import Trend, polarity

DISCLAIMER = (
    "These are estimates of how the voice sounded, made by software. They are not a "
    "diagnosis and say nothing certain about how anyone felt."
)
EMOTIONS: tuple[str, ...] = tuple(e.value for e in Emotion)
SOURCES: tuple[str, ...] = tuple(s.value for s in Source)
PERIODS_DAYS: tuple[int, ...] = (7, 30, 90)


@dataclass(frozen=True, slots=True)
class SessionDigest:
    """One session as the history lists it."""

    session_id: str
    started_utc: datetime
    ended_utc: datetime | None
    profile: str
    duration_s: float
    turns: int
    mix: dict[str, int] = field(default_factory=dict)  # emotion -> readings
    last_trend: str = ""  # the tracker's verdict after the session's last reading
    escalations: int = 0  # readings where the escalation flag was on

    @property
    def readings(self) -> int:
        return sum(self.mix.values())

    def mix_text(self) -> str:
        """ "neutral 4 · happy 2", most frequent first; "" without readings."""
        ranked = sorted(self.mix.items(), key=lambda kv: (-kv[1], EMOTIONS.index(kv[0])))
        return " · ".join(f"{emotion} {count}" for emotion, count in ranked if count)


@dataclass(frozen=True, slots=True)
class ReadingPoint:
    utc: datetime
    source: str
    emotion: str
    arousal: float | None
    valence: float | None


@dataclass(frozen=True, slots=True)
class DayStats:
    day: date
    sessions: int
    minutes: float
    mix: dict[str, int]  # emotion -> readings that day (both sources)
    arousal: dict[str, float | None]  # source -> mean arousal (None: no values)
    valence: dict[str, float | None]

    @property
    def readings(self) -> int:
        return sum(self.mix.values())

    def share(self, emotion: str) -> float:
        """The emotion's share of the day's readings (0 without readings)."""
        total = self.readings
        return self.mix.get(emotion, 0) / total if total else 0.0


def local_day(moment: datetime, tz: tzinfo | None = None) -> date:
    """The calendar day of `moment` in `tz` (None: the machine's local zone)."""
    return moment.astimezone(tz).date()


def period(last_day: date, days: int) -> tuple[date, date]:
    """(first, last) day of the `days` days that end with `last_day`."""
    if days < 1:
        raise ValueError(f"a period has at least one day, got {days!r}")
    return last_day - timedelta(days=days - 1), last_day


def _midnight(day: date, tz: tzinfo | None) -> datetime:
    naive = datetime(day.year, day.month, day.day)
    return naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()


def day_bounds(first: date, last: date, tz: tzinfo | None = None) -> tuple[datetime, datetime]:
    """The instants where local day `first` begins and local day `last` ends."""
    return _midnight(first, tz), _midnight(last + timedelta(days=1), tz)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def daily_stats(
    sessions: Sequence[SessionDigest],
    points: Sequence[ReadingPoint],
    first: date,
    last: date,
    tz: tzinfo | None = None,
) -> list[DayStats]:
    """One `DayStats` per day from `first` to `last` (days without sessions included,
    with zeros), sessions by the day they started, readings by the day they were made."""
    by_day_sessions: dict[date, list[SessionDigest]] = {}
    for s in sessions:
        by_day_sessions.setdefault(local_day(s.started_utc, tz), []).append(s)
    by_day_points: dict[date, list[ReadingPoint]] = {}
    for p in points:
        by_day_points.setdefault(local_day(p.utc, tz), []).append(p)
    days: list[DayStats] = []
    day = first
    while day <= last:
        own = by_day_sessions.get(day, [])
        pts = by_day_points.get(day, [])
        mix = Counter(p.emotion for p in pts)
        days.append(
            DayStats(
                day=day,
                sessions=len(own),
                minutes=sum(s.duration_s for s in own) / 60,
                mix={e: mix.get(e, 0) for e in EMOTIONS},
                arousal={src: _mean(p.arousal for p in pts if p.source == src) for src in SOURCES},
                valence={src: _mean(p.valence for p in pts if p.source == src) for src in SOURCES},
            )
        )
        day += timedelta(days=1)
    return days


# ---------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class Report:
    title: str
    first: date
    last: date
    sessions: tuple[SessionDigest, ...]  # oldest first
    days: tuple[DayStats, ...]
    minutes: float
    mix: dict[str, int]
    trend: str  # across the period, in words
    escalations: int
    notes: tuple[str, ...]
    disclaimer: str = DISCLAIMER

    @property
    def readings(self) -> int:
        return sum(self.mix.values())


def _negativity(mix: dict[str, int]) -> float | None:
    """Mean polarity of the readings (+1 negative ... -1 happy); None without any."""
    total = sum(mix.values())
    if not total:
        return None
    return sum(polarity(Emotion(e)) * n for e, n in mix.items()) / total


def _period_trend(sessions: Sequence[SessionDigest]) -> str:
    with_readings = [s for s in sessions if s.readings]
    if len(with_readings) < 2:
        return "not enough sessions with estimates to tell a trend"
    half = len(with_readings) // 2
    older, newer = with_readings[:half], with_readings[half:]
    older_mix: Counter[str] = Counter()
    newer_mix: Counter[str] = Counter()
    for s in older:
        older_mix.update(s.mix)
    for s in newer:
        newer_mix.update(s.mix)
    before, after = _negativity(dict(older_mix)), _negativity(dict(newer_mix))
    assert before is not None and after is not None
    if after <= before - 0.2:
        return "improving: later sessions sounded less negative than earlier ones"
    if after >= before + 0.2:
        return "worsening: later sessions sounded more negative than earlier ones"
    return "stable: earlier and later sessions sounded alike"


def _notes(sessions: Sequence[SessionDigest], mix: dict[str, int]) -> list[str]:
    notes: list[str] = []
    run = longest = 0
    for s in sessions:
        run = run + 1 if s.last_trend == Trend.PERSISTENT_NEGATIVE.value else 0
        longest = max(longest, run)
    if longest >= 3:
        notes.append(f"{longest} sessions in a row ended persistent negative.")
    elif longest == 2:
        notes.append("2 sessions in a row ended persistent negative.")
    escalated = [s for s in sessions if s.escalations]
    if escalated:
        notes.append(
            f"{len(escalated)} of {len(sessions)} sessions had an escalation "
            "(negative readings that kept up)."
        )
    total = sum(mix.values())
    if total:
        top, count = max(mix.items(), key=lambda kv: (kv[1], -EMOTIONS.index(kv[0])))
        notes.append(f"Most estimates were {top} ({count / total:.0%}).")
    no_estimates = sum(1 for s in sessions if not s.readings)
    if no_estimates:
        notes.append(f"{no_estimates} session(s) had no emotion estimates (consent off).")
    return notes


def build_report(
    sessions: Sequence[SessionDigest], days: Sequence[DayStats], first: date, last: date
) -> Report:
    """The report for the days `first`..`last` from their sessions and day figures."""
    ordered = tuple(sorted(sessions, key=lambda s: s.started_utc))
    mix: Counter[str] = Counter()
    for day in days:
        mix.update(day.mix)
    title = (
        f"Daily report — {first:%A %d %B %Y}"
        if first == last
        else f"Report — {first:%d %b} to {last:%d %b %Y} ({(last - first).days + 1} days)"
    )
    if not ordered:
        notes: list[str] = ["No sessions in this period."]
    else:
        notes = _notes(ordered, dict(mix))
    return Report(
        title=title,
        first=first,
        last=last,
        sessions=ordered,
        days=tuple(days),
        minutes=sum(s.duration_s for s in ordered) / 60,
        mix={e: mix.get(e, 0) for e in EMOTIONS},
        trend=_period_trend(ordered),
        escalations=sum(s.escalations for s in ordered),
        notes=tuple(notes),
    )
