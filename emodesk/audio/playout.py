"""The playout (jitter) buffer between reply audio arriving and the output device.

The engine thread writes device-rate PCM16 as it arrives (in bursts, with network
jitter); the PortAudio output callback reads exactly what the device asks for. Playback
starts only once `target` samples are buffered (or the first sample has waited that
long, so a short reply is not held back), which absorbs the jitter. When the buffer runs
dry mid-reply the missing samples are played as silence, with a short fade on both sides
so the gap does not click, and the event is counted as an underrun.

All methods are thread-safe; the lock is held only for list and array copies.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np

Int16Array = np.ndarray[Any, np.dtype[np.int16]]

# A dry spell followed by more audio within this window is a gap inside one reply (an
# underrun); a longer pause is the end of one reply and the start of the next.
_GAP_WINDOW_S = 0.5


class PlayoutBuffer:
    def __init__(
        self,
        rate: int,
        target_ms: float = 60.0,
        fade_ms: float = 2.0,
        max_seconds: float = 600.0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if target_ms < 0 or fade_ms < 0 or max_seconds <= 0:
            raise ValueError("target_ms and fade_ms must be >= 0 and max_seconds > 0")
        self.rate = rate
        self._target = round(rate * target_ms / 1000)
        self._fade = max(1, round(rate * fade_ms / 1000))
        self._max = round(rate * max_seconds)
        self._chunks: deque[Int16Array] = deque()
        self._head = 0  # samples of _chunks[0] already played
        self._depth = 0  # samples buffered
        self._lock = threading.Lock()
        self._playing = False
        self._first_wait: float | None = None  # when the oldest unplayed sample arrived
        self._dried_at: float | None = None  # when playback last ran dry mid-reply
        self._fade_in_next = False
        self.underruns = 0
        self.dropped_samples = 0  # oldest audio discarded past `max_seconds`
        self.started_at: float | None = None  # monotonic time playback last (re)started

    @property
    def depth(self) -> int:
        """Samples buffered and not yet handed to the device."""
        return self._depth

    @property
    def playing(self) -> bool:
        return self._playing

    def write(self, samples: Int16Array) -> None:
        data = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1)
        if data.size == 0:
            return
        now = time.monotonic()
        with self._lock:
            if self._dried_at is not None:
                if now - self._dried_at < _GAP_WINDOW_S:
                    self.underruns += 1
                self._dried_at = None
            if self._depth == 0:
                self._first_wait = now
            self._chunks.append(data.copy())
            self._depth += data.size
            while self._depth > self._max:
                self._drop_oldest_locked(self._depth - self._max)

    def read(self, n: int) -> bytes:
        """Exactly n samples as PCM16 bytes for the device: audio, or silence."""
        out = np.zeros(n, dtype=np.int16)
        self.read_into(out)
        return out.tobytes()

    def read_into(self, out: Int16Array) -> int:
        """Fill `out` (zeros where there is no audio); returns how many samples were audio."""
        n = out.size
        with self._lock:
            if not self._playing:
                waited = (
                    self._first_wait is not None
                    and time.monotonic() - self._first_wait >= self._target / self.rate
                )
                if self._depth == 0 or (self._depth < self._target and not waited):
                    out[:] = 0
                    return 0
                self._playing = True
                self.started_at = time.monotonic()
            got = self._copy_out_locked(out)
            if self._fade_in_next and got:
                k = min(self._fade, got)
                out[:k] = (out[:k] * np.linspace(0.0, 1.0, k, endpoint=False)).astype(np.int16)
                self._fade_in_next = False
            if got < n:
                out[got:] = 0
                k = min(self._fade, got)
                if k:
                    ramp = np.linspace(1.0, 0.0, k, endpoint=False)
                    out[got - k : got] = (out[got - k : got] * ramp).astype(np.int16)
                self._playing = False
                self._fade_in_next = True
                self._dried_at = time.monotonic()
                self._first_wait = None
            return got

    def clear(self) -> int:
        """Drop everything queued (a flush); returns the samples dropped."""
        with self._lock:
            dropped = self._depth
            self._chunks.clear()
            self._head = 0
            self._depth = 0
            self._playing = False
            self._first_wait = None
            self._dried_at = None  # a flush is not an underrun
            self._fade_in_next = False
            return dropped

    def _copy_out_locked(self, out: Int16Array) -> int:
        filled = 0
        n = out.size
        while filled < n and self._chunks:
            chunk = self._chunks[0]
            take = min(n - filled, chunk.size - self._head)
            out[filled : filled + take] = chunk[self._head : self._head + take]
            filled += take
            self._head += take
            if self._head == chunk.size:
                self._chunks.popleft()
                self._head = 0
        self._depth -= filled
        return filled

    def _drop_oldest_locked(self, n: int) -> None:
        while n > 0 and self._chunks:
            chunk = self._chunks[0]
            take = min(n, chunk.size - self._head)
            self._head += take
            n -= take
            self._depth -= take
            self.dropped_samples += take
            if self._head == chunk.size:
                self._chunks.popleft()
                self._head = 0
