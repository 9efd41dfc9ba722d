"""Energy voice-activity detection: utterances of a file, or of a live stream (hands-free).

Each 10 ms hop's RMS level is compared with a threshold that is the larger of a fixed
floor (`threshold_dbfs`) and the tracked noise floor plus `margin_db`, so steady hiss or
room noise never reads as speech however loud it is. Speech starts after `min_speech_ms`
of loud hops within a short window (so a click does not start one) and ends after
`min_pause_ms` of quiet; `pad_ms` of context is kept on both sides so soft onsets and
word tails are not cut. `segment_utterances` runs the same detector over a whole buffer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from emodesk.core.pcm import MIC_RATE
from emodesk.dsp.levels import frame_levels_dbfs

HOP_MS = 10.0


class EnergyVad:
    """Streaming utterance detector; `feed` returns utterances (sample ranges) as they close."""

    def __init__(
        self,
        rate: int = MIC_RATE,
        *,
        threshold_dbfs: float = -45.0,
        margin_db: float = 12.0,
        min_speech_ms: float = 150.0,
        min_pause_ms: float = 500.0,
        pad_ms: float = 100.0,
        noise_rise_db_per_s: float = 3.0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.threshold_dbfs = threshold_dbfs
        self.margin_db = margin_db
        self._hop = round(rate * HOP_MS / 1000.0)
        self._min_speech = max(1, math.ceil(min_speech_ms / HOP_MS))
        self._min_pause = max(1, math.ceil(min_pause_ms / HOP_MS))
        self._pad = math.ceil(pad_ms / HOP_MS)
        self._rise = noise_rise_db_per_s * HOP_MS / 1000.0
        self._noise_db: float | None = None
        self._pending = np.zeros(0, dtype=np.float64)
        self._hops = 0  # hops judged so far
        self._in_speech = False
        self._loud_run_start: int | None = None  # first hop of the current candidate onset
        self._loud_count = 0
        self._quiet = 0
        self._start_hop = 0
        self._last_loud = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def feed(self, chunk: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
        a = np.asarray(chunk).reshape(-1)
        if a.dtype.kind in "iu":
            a = a.astype(np.float64) / 32768.0
        self._pending = np.concatenate((self._pending, a.astype(np.float64, copy=False)))
        whole = (self._pending.size // self._hop) * self._hop
        if whole == 0:
            return []
        levels = frame_levels_dbfs(self._pending[:whole], self._hop)
        self._pending = self._pending[whole:]
        return self._judge(levels)

    def feed_levels(self, levels: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
        """Like `feed` but with precomputed 10 ms hop levels in dBFS."""
        return self._judge(np.asarray(levels, dtype=np.float64))

    def flush(self) -> list[tuple[int, int]]:
        """Close an utterance still open at the end of the stream."""
        if not self._in_speech:
            return []
        self._in_speech = False
        return [self._range(self._start_hop, self._last_loud + 1, clamp_end=True)]

    def _range(self, start_hop: int, end_hop: int, clamp_end: bool = False) -> tuple[int, int]:
        start = max(0, start_hop - self._pad) * self._hop
        end_hop = end_hop + self._pad
        if clamp_end:
            end_hop = min(end_hop, self._hops)
        return start, end_hop * self._hop

    def _judge(self, levels: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
        closed: list[tuple[int, int]] = []
        rise = self._rise
        noise = self._noise_db
        for level in levels.tolist():
            hop = self._hops
            self._hops += 1
            # Noise floor: follows drops at once, rises slowly, so speech barely lifts it.
            noise = level if noise is None or level < noise else noise + rise
            loud = level >= max(self.threshold_dbfs, noise + self.margin_db)
            if self._in_speech:
                if loud:
                    self._quiet = 0
                    self._last_loud = hop
                else:
                    self._quiet += 1
                    if self._quiet >= self._min_pause:
                        self._in_speech = False
                        closed.append(self._range(self._start_hop, self._last_loud + 1))
                continue
            if loud:
                if (
                    self._loud_run_start is None
                    or hop - self._loud_run_start > 2 * self._min_speech
                ):
                    self._loud_run_start, self._loud_count = hop, 0
                self._loud_count += 1
                if self._loud_count >= self._min_speech:
                    self._in_speech = True
                    self._start_hop = self._loud_run_start
                    self._last_loud = hop
                    self._quiet = 0
                    self._loud_run_start = None
        self._noise_db = noise
        return closed


def segment_utterances(
    pcm16: np.ndarray[Any, Any],
    rate: int = MIC_RATE,
    threshold_dbfs: float = -45.0,
    min_speech_ms: float = 150.0,
    min_pause_ms: float = 500.0,
    pad_ms: float = 100.0,
    max_utterance_s: float | None = None,
) -> list[tuple[int, int]]:
    """Sample ranges [start, end) of the utterances in a buffer, in order, within bounds.
    With `max_utterance_s`, speech with only short pauses (a monologue) is cut at its
    quietest moments into pieces of at most that length (for readings: one per minute
    says little); without, an utterance is as long as the speaker makes it (a turn)."""
    vad = EnergyVad(
        rate,
        threshold_dbfs=threshold_dbfs,
        min_speech_ms=min_speech_ms,
        min_pause_ms=min_pause_ms,
        pad_ms=pad_ms,
    )
    a = np.asarray(pcm16).reshape(-1)
    levels = frame_levels_dbfs(a, vad._hop)
    # Seed the floor with a quiet part of the file so speech at the very start is judged
    # against the room, not against itself.
    if levels.size:
        vad._noise_db = float(np.percentile(levels, 5))
    ranges = vad.feed_levels(levels) + vad.flush()
    ranges = [(start, min(end, a.size)) for start, end in ranges if start < a.size]
    if max_utterance_s is None:
        return ranges
    max_hops = max(1, round(max_utterance_s * 1000.0 / HOP_MS))
    pieces: list[tuple[int, int]] = []
    for start, end in ranges:
        pieces += _split_long(levels, vad._hop, start, end, max_hops)
    return pieces


def _split_long(
    levels: np.ndarray[Any, Any], hop: int, start: int, end: int, max_hops: int
) -> list[tuple[int, int]]:
    """Cut [start, end) into pieces of at most `max_hops` hops, each cut at the quietest
    100 ms in the last two thirds of the allowed length (so no piece is a sliver)."""
    pieces = []
    while (end - start) > max_hops * hop:
        first = start // hop + max_hops // 3
        last = start // hop + max_hops
        window = levels[first:last]
        smooth = np.convolve(window, np.ones(10) / 10, mode="same") if window.size >= 10 else window
        cut = (first + int(np.argmin(smooth))) * hop
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces
