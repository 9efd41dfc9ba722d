"""Sample-rate conversion with soxr, whole buffers or a stream of chunks (int16 in, int16 out)."""

from __future__ import annotations

from typing import Any

import numpy as np
import soxr

Int16Array = np.ndarray[Any, np.dtype[np.int16]]


def _check_rate(name: str, rate: int) -> int:
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ValueError(f"{name} must be a positive integer, got {rate!r}")
    return rate


def resample(x: np.ndarray[Any, Any], from_rate: int, to_rate: int) -> Int16Array:
    """Resample mono int16 samples from `from_rate` to `to_rate` Hz (soxr high quality)."""
    _check_rate("from_rate", from_rate)
    _check_rate("to_rate", to_rate)
    a = np.ascontiguousarray(np.asarray(x, dtype=np.int16).reshape(-1))
    if from_rate == to_rate or a.size == 0:
        return a.copy()
    out: Int16Array = soxr.resample(a, from_rate, to_rate, quality="HQ")
    return out


class StreamResampler:
    """Resamples a stream of mono int16 chunks, keeping the filter state between chunks.

    `flush()` returns the samples still held in the filter at the end of the stream;
    afterwards the resampler starts a fresh stream. `low_delay`: give each sample out
    as soon as it comes in, at a lower quality (cubic interpolation, no anti-aliasing
    filter), for a reference that must keep up with real time.
    """

    def __init__(self, from_rate: int, to_rate: int, *, low_delay: bool = False) -> None:
        self.from_rate = _check_rate("from_rate", from_rate)
        self.to_rate = _check_rate("to_rate", to_rate)
        # soxr's high quality holds back 6-37 ms (24 -> 16 kHz, 10 ms chunks) and gives
        # it out in bursts; its quick (cubic) quality holds back one sample.
        self._quality = "QQ" if low_delay else "HQ"
        self._stream: Any = self._new_stream()

    def _new_stream(self) -> Any:
        if self.from_rate == self.to_rate:
            return None
        return soxr.ResampleStream(
            self.from_rate, self.to_rate, 1, dtype="int16", quality=self._quality
        )

    def process(self, chunk: np.ndarray[Any, Any]) -> Int16Array:
        a = np.ascontiguousarray(np.asarray(chunk, dtype=np.int16).reshape(-1))
        if self._stream is None:
            return a.copy()
        out: Int16Array = self._stream.resample_chunk(a)
        return out

    def flush(self) -> Int16Array:
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        out: Int16Array = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._stream = self._new_stream()
        return out
