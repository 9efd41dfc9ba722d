"""A fixed-size ring buffer of samples for one writer thread and one reader thread.

The audio callback writes; the plot timer and the consumer read. The lock is held only
for the copy in or out, so neither side waits on the other's work.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt


class RingBuffer:
    """Keeps the newest `capacity` samples written.

    `latest(n)` gives a snapshot of the newest n samples (for plots); `read_new(max_n)`
    gives samples a consumer has not yet read, oldest first. When the writer laps the
    reader, the reader skips ahead to the oldest sample still held and `dropped` counts
    the samples it lost.
    """

    def __init__(self, capacity: int, dtype: npt.DTypeLike = np.int16) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self._capacity = capacity
        self._buf: np.ndarray[Any, Any] = np.zeros(capacity, dtype=dtype)
        self._lock = threading.Lock()
        self._total = 0  # samples ever written
        self._read_pos = 0  # absolute index of the next sample read_new() returns
        self._dropped = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def dtype(self) -> np.dtype[Any]:
        dtype: np.dtype[Any] = self._buf.dtype
        return dtype

    @property
    def total_written(self) -> int:
        return self._total

    @property
    def dropped(self) -> int:
        """Samples the reader never saw because the writer overwrote them first."""
        return self._dropped

    @property
    def available(self) -> int:
        """Samples `read_new` would return now (bounded by capacity)."""
        with self._lock:
            return min(self._total - self._read_pos, self._capacity)

    def write(self, samples: np.ndarray[Any, Any]) -> None:
        data = np.asarray(samples).reshape(-1)
        if data.size == 0:
            return
        if data.size > self._capacity:
            # Only the newest `capacity` samples can survive; skip copying the rest.
            skipped = data.size - self._capacity
            data = data[skipped:]
        else:
            skipped = 0
        n = data.size
        with self._lock:
            start = (self._total + skipped) % self._capacity
            first = min(n, self._capacity - start)
            self._buf[start : start + first] = data[:first]
            if first < n:
                self._buf[: n - first] = data[first:]
            self._total += skipped + n

    def latest(self, n: int) -> np.ndarray[Any, Any]:
        """A copy of the newest n samples, zero-padded at the front if fewer were written."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        out = np.zeros(n, dtype=self._buf.dtype)
        with self._lock:
            have = min(n, self._total, self._capacity)
            if have:
                self._copy_out(self._total - have, have, out[n - have :])
        return out

    def read_new(self, max_n: int | None = None) -> np.ndarray[Any, Any]:
        """Samples written since the last call, oldest first, at most `max_n` of them."""
        return self.read_new_indexed(max_n)[1]

    def read_new_indexed(self, max_n: int | None = None) -> tuple[int, np.ndarray[Any, Any]]:
        """`read_new`, with the index of the first sample returned among all ever
        written (`total_written` counts the same way)."""
        with self._lock:
            oldest_held = max(0, self._total - self._capacity)
            if self._read_pos < oldest_held:
                self._dropped += oldest_held - self._read_pos
                self._read_pos = oldest_held
            n = self._total - self._read_pos
            if max_n is not None:
                n = max(0, min(n, max_n))
            out = np.empty(n, dtype=self._buf.dtype)
            start = self._read_pos
            if n:
                self._copy_out(start, n, out)
            self._read_pos += n
        return start, out

    def clear(self) -> None:
        """Forget everything written; the next read sees only newer samples."""
        with self._lock:
            self._buf[:] = 0
            self._read_pos = self._total

    def _copy_out(self, abs_start: int, n: int, out: np.ndarray[Any, Any]) -> None:
        start = abs_start % self._capacity
        first = min(n, self._capacity - start)
        out[:first] = self._buf[start : start + first]
        if first < n:
            out[first:n] = self._buf[: n - first]
