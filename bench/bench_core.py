"""Core timings: the parser on the tool-call path (budget: tool call to response p99 under
5 ms), tracker and timeline per reading, export of a full timeline, and the timeline's
memory at its bound (budget: a one-hour session grows memory by under 20 MB)."""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable

from emodesk.core.emotion import Emotion, EmotionReading, EnergyLevel, Source
from emodesk.core.export import SessionMetadata, new_session_id, timeline_csv, timeline_json
from emodesk.core.parsing import parse_emotion_args, split_emotion_header
from emodesk.core.timeline import Timeline, TimelineEntry
from emodesk.core.tracker import EmotionTracker

ARGS = {"emotion": "Frustrated", "confidence": "80%", "energy_level": "HIGH"}
REPLY = '```json\n{"emotion": "worried", "confidence": 0.6}\n```\nLet us take it slowly.'


def _percentiles(name: str, call: Callable[[int], object], runs: int) -> None:
    samples = []
    for i in range(runs):
        start = time.perf_counter_ns()
        call(i)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"{name:<34} p50 {p50:8.1f} us   p99 {p99:8.1f} us   max {samples[-1]:8.1f} us")


def _reading(turn: int) -> EmotionReading:
    return EmotionReading(
        turn=turn // 2,
        source=Source.MODEL if turn % 2 else Source.ACOUSTIC,
        t_start_s=turn * 2.0,
        t_end_s=turn * 2.0 + 1.5,
        emotion=list(Emotion)[turn % 5],
        confidence=0.7,
        energy_level=EnergyLevel.MEDIUM,
        arousal=None if turn % 2 else 0.2,
        valence=None if turn % 2 else -0.3,
    )


def main() -> None:
    _percentiles("parse_emotion_args", lambda _: parse_emotion_args(ARGS), 20_000)
    _percentiles("split_emotion_header (fenced)", lambda _: split_emotion_header(REPLY), 20_000)
    tracker = EmotionTracker()
    readings = [_reading(i) for i in range(20_000)]
    _percentiles("EmotionTracker.add", lambda i: tracker.add(readings[i]), 20_000)
    timeline = Timeline()
    timeline.subscribe(lambda _: None)
    entries = [TimelineEntry(r, tracker.verdict.trend, False) for r in readings]
    _percentiles("Timeline.append (1 subscriber)", lambda i: timeline.append(entries[i]), 20_000)

    meta = SessionMetadata(new_session_id(), readings[0].utc, "Puck", "m", "general", None, "en")
    start = time.perf_counter()
    csv_text = timeline_csv(meta.session_id, timeline.entries())
    csv_s = time.perf_counter() - start
    start = time.perf_counter()
    json_text = timeline_json(meta, timeline.entries())
    json_s = time.perf_counter() - start
    print(f"timeline_csv, 20000 rows             {csv_s * 1000:8.1f} ms  ({len(csv_text)} chars)")
    print(f"timeline_json, 20000 rows            {json_s * 1000:8.1f} ms  ({len(json_text)} chars)")

    # Memory of a full timeline (its bound), readings included: one hour of turns every
    # 4 s with both sources is about 1800 entries, far below the 20 000 bound.
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    full = Timeline()
    for i in range(20_000):
        full.append(TimelineEntry(_reading(i), tracker.verdict.trend, False))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(f"Timeline at its 20000-entry bound     {grown / 1e6:8.2f} MB")


if __name__ == "__main__":
    main()
