"""`emodesk analyze FILE.wav`: local acoustic emotion per utterance, as a table, CSV or JSON."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from emodesk.core.emotion import EmotionReading
from emodesk.core.export import (
    ExportError,
    SessionMetadata,
    new_session_id,
    timeline_csv,
    timeline_json,
    unwritable_reason,
    write_text_atomic,
)
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import EmotionTracker
from emodesk.dsp.estimator import AcousticEstimator, to_reading
from emodesk.dsp.levels import peak_dbfs
from emodesk.dsp.prosody import ProsodyStream
from emodesk.dsp.vad import segment_utterances
from emodesk.dsp.wav import TARGET_RATE, WavError, read_wav

SILENT_PEAK_DBFS = -60.0
PROGRESS_MIN_S = 30.0
MAX_READING_S = 15.0  # a monologue gives a reading per piece this long, not one per minute
_CHUNK = TARGET_RATE  # feed one second at a time: steady progress, bounded work per step
_PEAK_BLOCK = 1 << 20


class _Progress:
    """A one-line text progress bar on stderr, drawn only where it helps."""

    def __init__(self, total: int, stream: TextIO, enabled: bool, label: str = "analysing") -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.enabled = enabled
        self.label = label
        self._shown = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        percent = min(100, done * 100 // self.total)
        if percent == self._shown:
            return
        self._shown = percent
        filled = percent * 30 // 100
        self.stream.write(f"\r{self.label:<9} [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._shown >= 0:
            self.stream.write("\n")
            self.stream.flush()


def _show_progress(duration_s: float) -> bool:
    # Only a terminal redraws the line; a log would collect every update.
    return sys.stderr.isatty() and duration_s > PROGRESS_MIN_S


class _ReadingProgress:
    """`read_wav`'s progress callback: the bar is made once the file's length is known."""

    def __init__(self) -> None:
        self.bar: _Progress | None = None

    def __call__(self, done_s: float, total_s: float) -> None:
        if self.bar is None:
            self.bar = _Progress(_ms(total_s), sys.stderr, _show_progress(total_s), "reading")
        self.bar.update(_ms(done_s))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _peak_dbfs(pcm: np.ndarray[Any, Any]) -> float:
    """`peak_dbfs` a block at a time: it works in float64, 4x the int16 signal at once."""
    if pcm.size == 0:
        return peak_dbfs(pcm)
    return max(peak_dbfs(pcm[i : i + _PEAK_BLOCK]) for i in range(0, pcm.size, _PEAK_BLOCK))


def analyse(
    pcm: np.ndarray[Any, Any], progress: _Progress | None = None
) -> list[tuple[EmotionReading, dict[str, float]]]:
    """Readings (with their features) for each utterance of 16 kHz int16 audio."""
    estimator = AcousticEstimator()
    results: list[tuple[EmotionReading, dict[str, float]]] = []
    pieces = segment_utterances(pcm, TARGET_RATE, max_utterance_s=MAX_READING_S)
    for start, end in pieces:
        stream = ProsodyStream(TARGET_RATE)
        for pos in range(start, end, _CHUNK):
            stream.feed(pcm[pos : min(pos + _CHUNK, end)])
            if progress is not None:
                progress.update(min(pos + _CHUNK, end))
        est = estimator.assess(stream.finish())
        if est is None:
            continue
        turn = len(results) + 1
        reading = to_reading(est, turn, start / TARGET_RATE, end / TARGET_RATE)
        results.append((reading, est.features.as_dict()))
    return results


def _table(entries: list[TimelineEntry], out: TextIO) -> None:
    header = f"{'turn':>4}  {'start':>8}  {'end':>8}  {'emotion':<8} {'conf':>5}  "
    header += f"{'energy':<6} {'arousal':>7} {'valence':>7}  trend"
    out.write(header + "\n")
    for e in entries:
        r = e.reading
        out.write(
            f"{r.turn:>4}  {r.t_start_s:>8.2f}  {r.t_end_s:>8.2f}  {r.emotion.value:<8} "
            f"{r.confidence:>5.2f}  {r.energy_level.value:<6} {r.arousal or 0.0:>7.2f} "
            f"{r.valence or 0.0:>7.2f}  {e.trend.value}\n"
        )


def _output_problem(args: argparse.Namespace) -> str:
    """Why the outputs asked for cannot be written, before the (long) analysis: never
    over the recording itself, never both to one file, and only where writing works."""
    outputs = [path for path in (args.csv, args.json) if path]
    source = Path(args.file).resolve()
    resolved = [Path(path).resolve() for path in outputs]
    for path, target in zip(outputs, resolved, strict=True):
        if target == source:
            return f"{path} is the recording itself: choose another output file"
    if len(set(resolved)) < len(resolved):
        return f"--csv and --json both name {outputs[0]}: give each its own file"
    for path in outputs:
        reason = unwritable_reason(path)
        if reason:
            return f"cannot write {path}: {reason}"
    return ""


def run(args: argparse.Namespace) -> int:
    problem = _output_problem(args)
    if problem:
        print(f"emodesk analyze: {problem}", file=sys.stderr)
        return 2
    read_progress = _ReadingProgress()
    try:
        pcm, duration_s = read_wav(
            args.file,
            on_progress=read_progress,
            on_warning=lambda message: print(f"emodesk analyze: {message}", file=sys.stderr),
        )
    except WavError as exc:
        read_progress.close()
        print(f"emodesk analyze: {exc}", file=sys.stderr)
        return 2
    read_progress.close()
    if pcm.size == 0 or _peak_dbfs(pcm) < SILENT_PEAK_DBFS:
        print(f"emodesk analyze: {args.file}: the recording is silent", file=sys.stderr)
        return 2
    progress = _Progress(pcm.size, sys.stderr, enabled=_show_progress(duration_s))
    results = analyse(pcm, progress)
    progress.update(pcm.size)
    progress.close()

    tracker = EmotionTracker()
    entries = []
    for reading, _features in results:
        verdict = tracker.add(reading)
        entries.append(TimelineEntry(reading, verdict.trend, verdict.escalate))
    if entries:
        _table(entries, sys.stdout)
    else:
        print(f"no speech found in {args.file} ({duration_s:.1f} s)")

    session_id = new_session_id()
    try:
        if args.csv:
            write_text_atomic(args.csv, timeline_csv(session_id, entries))
        if args.json:
            meta = SessionMetadata(
                session_id=session_id,
                started_utc=datetime.now(UTC),
                voice="",
                model="acoustic",
                profile="analyze",
                consent_version=None,
                language="",
            )
            write_text_atomic(args.json, timeline_json(meta, entries))
    except ExportError as exc:
        print(f"emodesk analyze: {exc}", file=sys.stderr)
        return 1
    return 0
