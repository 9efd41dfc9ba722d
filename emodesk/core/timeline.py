"""The session's timeline: every reading with the tracker's verdict after it.

Append-only and bounded: past `max_entries` the oldest entries are dropped (and
counted), so an hours-long session cannot grow memory without limit. Subscribers are
called synchronously on `append`, on the caller's thread (the asyncio loop).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from emodesk.core.emotion import EmotionReading, Source
from emodesk.core.tracker import Trend


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    reading: EmotionReading
    trend: Trend
    escalate: bool

    def __post_init__(self) -> None:
        if not isinstance(self.reading, EmotionReading):
            raise TypeError(f"reading must be an EmotionReading, got {type(self.reading)}")
        object.__setattr__(self, "trend", Trend(self.trend))
        if not isinstance(self.escalate, bool):
            raise TypeError(f"escalate must be a bool, got {type(self.escalate).__name__}")


Subscriber = Callable[[TimelineEntry], None]


class Timeline:
    def __init__(self, max_entries: int = 20_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a positive integer, got {max_entries!r}")
        self._entries: deque[TimelineEntry] = deque(maxlen=max_entries)
        self._subscribers: list[Subscriber] = []
        self._dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def max_entries(self) -> int:
        maxlen = self._entries.maxlen
        assert maxlen is not None
        return maxlen

    @property
    def dropped_count(self) -> int:
        """Entries dropped from the front because the timeline was full."""
        return self._dropped

    @property
    def latest(self) -> TimelineEntry | None:
        return self._entries[-1] if self._entries else None

    def append(self, entry: TimelineEntry) -> None:
        """Store the entry, then tell every subscriber.

        A subscriber that raises does not stop the others: all are called, then the
        first error is raised again (the entry stays stored).
        """
        if not isinstance(entry, TimelineEntry):
            raise TypeError(f"expected a TimelineEntry, got {type(entry).__name__}")
        if len(self._entries) == self._entries.maxlen:
            self._dropped += 1
        self._entries.append(entry)
        first_error: BaseException | None = None
        for subscriber in tuple(self._subscribers):  # a callback may unsubscribe
            try:
                subscriber(entry)
            except Exception as exc:
                if first_error is None:
                    first_error = exc
        if first_error is not None:
            raise first_error

    def subscribe(self, cb: Subscriber) -> Callable[[], None]:
        """Call `cb(entry)` on every later append; returns an idempotent unsubscribe."""
        if not callable(cb):
            raise TypeError("the subscriber must be callable")
        self._subscribers.append(cb)
        token = self._subscribers[-1]

        def unsubscribe() -> None:
            for index, subscriber in enumerate(self._subscribers):
                if subscriber is token:
                    del self._subscribers[index]
                    return

        return unsubscribe

    def entries(
        self,
        source: Source | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> list[TimelineEntry]:
        """Entries in append order, optionally of one source and overlapping the time
        span [start_s, end_s] (a reading overlaps if any part of its turn is inside)."""
        wanted = Source(source) if source is not None else None
        return [
            entry
            for entry in self._entries
            if (wanted is None or entry.reading.source is wanted)
            and (start_s is None or entry.reading.t_end_s >= start_s)
            and (end_s is None or entry.reading.t_start_s <= end_s)
        ]
