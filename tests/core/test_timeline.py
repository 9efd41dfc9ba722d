import pytest

from emodesk.core.emotion import Emotion, EmotionReading, EnergyLevel, Source
from emodesk.core.timeline import Timeline, TimelineEntry
from emodesk.core.tracker import Trend


def entry(turn: int, source: Source = Source.MODEL, start: float | None = None) -> TimelineEntry:
    t_start = turn * 5.0 if start is None else start
    reading = EmotionReading(
        turn=turn,
        source=source,
        t_start_s=t_start,
        t_end_s=t_start + 2.0,
        emotion=Emotion.NEUTRAL,
        confidence=0.5,
        energy_level=EnergyLevel.LOW,
    )
    return TimelineEntry(reading, Trend.STABLE, False)


def test_appends_in_order_and_reports_latest() -> None:
    timeline = Timeline()
    assert len(timeline) == 0
    assert timeline.entries() == []
    assert Timeline().latest is None
    first, second = entry(0), entry(1)
    timeline.append(first)
    timeline.append(second)
    assert len(timeline) == 2
    assert timeline.latest is second
    assert timeline.entries() == [first, second]


def test_filters_by_source_and_overlapping_time() -> None:
    timeline = Timeline()
    items = [entry(turn, source) for turn in range(4) for source in Source]
    for item in items:
        timeline.append(item)
    acoustic = timeline.entries(Source.ACOUSTIC)
    assert [e.reading.turn for e in acoustic] == [0, 1, 2, 3]
    assert all(e.reading.source is Source.ACOUSTIC for e in acoustic)
    # Turn 1 spans 5..7 s, turn 2 10..12 s: a window 6..10 touches both.
    window = timeline.entries(Source.MODEL, start_s=6.0, end_s=10.0)
    assert [e.reading.turn for e in window] == [1, 2]
    assert [e.reading.turn for e in timeline.entries(start_s=12.5)] == [3, 3]
    assert timeline.entries(end_s=-1.0) == []


def test_bounded_memory_drops_the_oldest_and_counts_them() -> None:
    timeline = Timeline(max_entries=3)
    items = [entry(turn) for turn in range(5)]
    for item in items:
        timeline.append(item)
    assert len(timeline) == 3
    assert timeline.dropped_count == 2
    assert timeline.entries() == items[2:]


def test_subscribers_hear_every_append_until_they_unsubscribe() -> None:
    timeline = Timeline()
    heard: list[TimelineEntry] = []
    unsubscribe = timeline.subscribe(heard.append)
    first = entry(0)
    timeline.append(first)
    unsubscribe()
    unsubscribe()  # idempotent
    timeline.append(entry(1))
    assert heard == [first]


def test_a_failing_subscriber_does_not_silence_the_others() -> None:
    timeline = Timeline()
    heard: list[TimelineEntry] = []

    def broken(_: TimelineEntry) -> None:
        raise RuntimeError("plot gone")

    timeline.subscribe(broken)
    timeline.subscribe(heard.append)
    item = entry(0)
    with pytest.raises(RuntimeError, match="plot gone"):
        timeline.append(item)
    assert heard == [item]
    assert timeline.latest is item


def test_a_subscriber_may_unsubscribe_while_being_called() -> None:
    timeline = Timeline()
    calls: list[int] = []

    def once(e: TimelineEntry) -> None:
        calls.append(e.reading.turn)
        unsubscribe()

    unsubscribe = timeline.subscribe(once)
    timeline.subscribe(lambda e: calls.append(-e.reading.turn - 100))
    timeline.append(entry(1))
    timeline.append(entry(2))
    assert calls == [1, -101, -102]


def test_rejects_what_is_not_an_entry() -> None:
    timeline = Timeline()
    with pytest.raises(TypeError):
        timeline.append("reading")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        timeline.subscribe(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Timeline(max_entries=0)
    with pytest.raises(ValueError):
        TimelineEntry(entry(0).reading, "rising", False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TimelineEntry(entry(0).reading, Trend.STABLE, 1)  # type: ignore[arg-type]
