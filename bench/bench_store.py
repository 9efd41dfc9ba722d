"""Store write latency on the asyncio loop: add_reading / add_transcript p50/p99 with the
shipped settings (WAL, synchronous=NORMAL) and, for comparison, synchronous=FULL; plus
the bulk calls that run in an executor."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from emodesk.core.emotion import EmotionReading
from emodesk.core.export import SessionMetadata, new_session_id
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import Trend
from emodesk.store import SessionStore

READINGS = 2000


def _entry(turn: int) -> TimelineEntry:
    reading = EmotionReading(
        turn=turn,
        source="acoustic",
        t_start_s=turn * 4.0,
        t_end_s=turn * 4.0 + 2.5,
        emotion="neutral",
        confidence=0.6,
        energy_level="medium",
        arousal=0.1,
        valence=-0.2,
    )
    return TimelineEntry(reading, Trend.STABLE, False)


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"p50 {p50 * 1e3:.3f} ms  p99 {p99 * 1e3:.3f} ms  max {ordered[-1] * 1e3:.3f} ms"


def _run(folder: Path, synchronous: str) -> None:
    with SessionStore(folder / f"history-{synchronous}.sqlite3") as store:
        # The bench alone switches the pragma, to show what FULL would cost.
        store._conn.execute(f"PRAGMA synchronous = {synchronous}")
        meta = SessionMetadata(
            new_session_id(), datetime.now(UTC), "Puck", "m", "support", "v1", "en"
        )
        store.start_session(meta)
        entries = [_entry(turn) for turn in range(READINGS)]
        reading_s, transcript_s = [], []
        for entry in entries:
            start = time.perf_counter()
            store.add_reading(meta.session_id, entry)
            reading_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            store.add_transcript(meta.session_id, entry.reading.turn, "user", "words " * 20)
            transcript_s.append(time.perf_counter() - start)
        print(f"  synchronous={synchronous:<6} add_reading    {_percentiles(reading_s)}")
        print(f"  synchronous={synchronous:<6} add_transcript {_percentiles(transcript_s)}")
        if synchronous == "NORMAL":
            _bulk(store, folder, meta.session_id)


def _bulk(store: SessionStore, folder: Path, session_id: str) -> None:
    for fmt in ("csv", "json"):
        start = time.perf_counter()
        store.export_session(session_id, folder / f"out.{fmt}", fmt=fmt)
        print(
            f"  export {fmt} of {READINGS} readings: {(time.perf_counter() - start) * 1e3:.1f} ms"
        )
    start = time.perf_counter()
    store.sessions()
    print(f"  sessions(): {(time.perf_counter() - start) * 1e3:.2f} ms")
    store.end_session(session_id)
    start = time.perf_counter()
    store.apply_retention(0, now=datetime.now(UTC) + timedelta(seconds=1))
    elapsed_ms = (time.perf_counter() - start) * 1e3
    print(f"  apply_retention deleting {READINGS} readings: {elapsed_ms:.1f} ms")
    start = time.perf_counter()
    store.delete_all()
    print(f"  delete_all (with VACUUM): {(time.perf_counter() - start) * 1e3:.1f} ms")


def main() -> None:
    for base in (None, Path.home()):
        with tempfile.TemporaryDirectory(dir=base) as folder:
            print(f"folder {folder}:")
            for synchronous in ("NORMAL", "FULL"):
                _run(Path(folder), synchronous)


if __name__ == "__main__":
    main()
