"""The playout (jitter) buffer between reply audio arriving and the output device.

The engine thread writes device-rate PCM16 as it arrives (in bursts, with network
jitter); the output reads a block at a time: PortAudio's callback what the device asks
for, or the engine for the sound server's queue (`server_output`).

The buffer is adaptive, as WebRTC's NetEq is: how long the first sample of a reply waits
before playback starts (the target) follows the measured jitter of the link instead of
a fixed depth. Each chunk's arrival is compared with its place in the reply's media
time; how much later than the earliest-ever chunk (relative to media time) a chunk came
is its lateness. Before any is measured, `initial_jitter_ms` is assumed; the assumption
fades fast (half-life `prior_decay_s` of reply audio), so a link is soon judged by what
it does. The device side is measured too: how far ahead of real time the output
callback has taken audio since playback started. That is one block when callbacks come
on time, and needs no wait: each takes the block it is about to play, and a chunk's
arrival is timed by its first sample. It is more when callbacks come late and then
catch up in a burst, as they do when the sound server or the GIL holds them back. The
target is the device's lead beyond one block plus the peak lateness; both grow at once
and decay slowly (half-life `decay_s` of reply audio); an underrun adds one device
period, decaying likewise. Playback also waits for a whole block to be buffered (or
for a block's time more, for a reply shorter than that). Neither the target nor the
whole wait exceeds the ceiling (the `playout_buffer_ms` setting). A change of target
acts only where playback (re)starts, so it never cuts audio: when the buffer runs dry
mid-reply, the missing samples are silence with a short fade on both sides, so the gap
does not click, and the event is counted as an underrun.

The delay actually buffered shrinks too, as NetEq's "accelerate" does: when the device
stalls (a sound-server or CPU hiccup), playback falls behind real time since it
started, and stays behind for half a second while more than the target is buffered.
(Audio a server sends ahead of real time only deepens the buffer and is kept whole.)
The lag is then played out faster: every fourth device block drops up to 2.5 ms of
audio, cross-faded over 5 ms so the cut does not click (about 6% faster, no pitch
change); every block while the lag is over 100 ms (25% faster: the device stalls
often, as on a starved CPU, and the delay would otherwise keep growing).

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
# Accelerate: the window over which the lowest depth is taken, the excess over the target
# tolerated, how much one cut drops at most, its cross-fade, and cuts one block in N.
_TRIM_WINDOW_S = 0.5
_TRIM_MARGIN_S = 0.01
_TRIM_MAX_S = 0.0025
_TRIM_FADE_S = 0.005
_TRIM_EVERY = 4
_TRIM_HURRY_S = 0.1  # an excess above this is cut at every block


class PlayoutBuffer:
    """`ceiling_ms`: the most the target may grow to. `period_ms`: the device's callback
    period (its block). `queue_ms`: how far ahead of real time the device is meant to
    take audio (a sound server kept some blocks ahead); only a lead beyond it is a burst
    to wait for (default: one period). `initial_jitter_ms`: the jitter assumed before any
    was measured (fading with a half-life of `prior_decay_s` of reply audio). `adaptive=False` holds
    the target at the ceiling (the fixed buffer this one replaced)."""

    def __init__(
        self,
        rate: int,
        ceiling_ms: float = 60.0,
        *,
        period_ms: float = 10.0,
        queue_ms: float | None = None,
        initial_jitter_ms: float = 10.0,
        decay_s: float = 20.0,
        prior_decay_s: float = 1.0,
        adaptive: bool = True,
        fade_ms: float = 2.0,
        max_seconds: float = 600.0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if min(ceiling_ms, period_ms, initial_jitter_ms, fade_ms) < 0 or max_seconds <= 0:
            raise ValueError("times must be >= 0 and max_seconds > 0")
        if decay_s <= 0 or prior_decay_s <= 0:
            raise ValueError("decay_s and prior_decay_s must be positive")
        self.rate = rate
        self.adaptive = adaptive
        self._ceiling_s = ceiling_ms / 1000
        self._period_s = period_ms / 1000
        self._queue_s = max(self._period_s, (queue_ms or 0.0) / 1000)
        self._decay_s = decay_s
        self._prior_decay_s = prior_decay_s
        self._prior_s = initial_jitter_ms / 1000  # the jitter assumed, fading fast
        self._jitter_s = 0.0  # peak lateness measured, decaying
        self._lead_s = self._queue_s  # peak device lead, decaying
        self._played = 0  # samples handed to the device since playback (re)started
        self._boost_s = 0.0  # added by underruns, decaying
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
        # The reply's clock: arrival of its first chunk, media samples written since,
        # and the earliest arrival relative to media time seen in it.
        self._reply_t0: float | None = None
        self._reply_media = 0
        self._earliest = 0.0
        self._window_start: float | None = None
        self._window_min = 0  # the lowest depth at a read in the current window
        self._window_lag = 0  # the least playback lagged real time in it (samples)
        self._start_consumed = 0  # `consumed` when playback (re)started
        self._excess = 0  # samples above the target still to drop
        self._reads = 0
        self.underruns = 0
        self.dropped_samples = 0  # oldest audio discarded past `max_seconds`
        self.trimmed_samples = 0  # audio dropped (cross-faded) to shrink the delay
        self.consumed = 0  # samples taken out of the buffer: played or trimmed
        self.started_at: float | None = None  # monotonic time playback last (re)started

    @property
    def depth(self) -> int:
        """Samples buffered and not yet handed to the device."""
        return self._depth

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def target_ms(self) -> float:
        """How long the first sample of a reply (or after a gap) waits before playback."""
        return self._target_s() * 1000

    @property
    def jitter_ms(self) -> float:
        """The link's peak lateness as measured (decaying), or as still assumed."""
        return max(self._jitter_s, self._prior_s) * 1000

    @property
    def device_lead_ms(self) -> float:
        """How far ahead of real time the device has taken audio, at peak (decaying)."""
        return self._lead_s * 1000

    def starts_in_s(self) -> float | None:
        """How long until a read would start playback (0: now); None while playing or
        with nothing buffered. An output that is not read at a steady pace (the sound
        server's queue, topped up by the engine) reads again then."""
        with self._lock:
            if self._playing or self._depth == 0 or self._first_wait is None:
                return None
            target = self._target_s()
            if self._depth < self._period_s * self.rate:  # a part block waits longer
                target = min(target + self._period_s, self._ceiling_s)
            return max(0.0, self._first_wait + target - time.monotonic())

    def set_device_queue(self, queue_ms: float) -> None:
        """How far ahead the device now keeps audio (a reopened output may keep more or
        less); its measured lead starts again from there."""
        with self._lock:
            self._queue_s = max(self._period_s, queue_ms / 1000)
            self._lead_s = self._queue_s

    def _target_s(self) -> float:
        if not self.adaptive:
            return self._ceiling_s
        burst = max(0.0, self._lead_s - self._queue_s)  # ahead beyond what the device keeps
        wanted = burst + max(self._jitter_s, self._prior_s) + self._boost_s
        return min(self._ceiling_s, wanted)

    def write(self, samples: Int16Array, arrived: float | None = None) -> None:
        """Queue reply audio; `arrived`: when it came off the network (monotonic), the
        time its lateness is measured by (default: now)."""
        data = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1)
        if data.size == 0:
            return
        now = time.monotonic()
        t = now if arrived is None else arrived
        with self._lock:
            gap = False
            if self._dried_at is not None:
                gap = now - self._dried_at < _GAP_WINDOW_S
                if gap:
                    self.underruns += 1
                    self._boost_s += self._period_s
                self._dried_at = None
            if self._depth == 0:
                self._first_wait = now
            if self._reply_t0 is None or (self._depth == 0 and not self._playing and not gap):
                self._new_reply_locked(t)
            else:
                self._measure_locked(t)
            self._reply_media += data.size
            self._decay_locked(data.size / self.rate)
            self._chunks.append(data.copy())
            self._depth += data.size
            while self._depth > self._max:
                self._drop_oldest_locked(self._depth - self._max)

    def _new_reply_locked(self, t: float) -> None:
        self._reply_t0 = t
        self._reply_media = 0
        self._earliest = 0.0

    def _measure_locked(self, t: float) -> None:
        assert self._reply_t0 is not None
        relative = (t - self._reply_t0) - self._reply_media / self.rate
        if relative < self._earliest:
            self._earliest = relative
            return
        # Bounded, so a pause inside a reply cannot hold the estimate above the ceiling.
        lateness = min(relative - self._earliest, self._ceiling_s)
        self._jitter_s = max(self._jitter_s, lateness)

    def _decay_locked(self, audio_s: float) -> None:
        factor = 0.5 ** (audio_s / self._decay_s)
        self._prior_s *= 0.5 ** (audio_s / self._prior_decay_s)
        self._jitter_s *= factor
        self._boost_s *= factor
        self._lead_s = max(self._queue_s, self._lead_s * factor)

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
                now = time.monotonic()
                if self._depth == 0:
                    out[:] = 0
                    return 0
                assert self._first_wait is not None  # set whenever audio is buffered
                waited = now - self._first_wait
                target = self._target_s()
                # A whole block, so the first read is audio throughout; a reply shorter
                # than a block plays once it has waited a block's time more (the ceiling
                # bounds the whole wait).
                longest = min(target + self._period_s, self._ceiling_s)
                if waited < target or (self._depth < n and waited < longest):
                    out[:] = 0
                    return 0
                self._playing = True
                self.started_at = now
                self._played = 0
                self._start_consumed = self.consumed
                self._window_start = None
            got = self._accelerate_locked(out) if self._excess_due_locked(n) else 0
            if not got:
                got = self._copy_out_locked(out)
            self._played += n
            assert self.started_at is not None
            ahead = self._played / self.rate - (time.monotonic() - self.started_at)
            self._lead_s = max(self._lead_s, min(ahead, self._ceiling_s))
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

    def _excess_due_locked(self, n: int) -> bool:
        """Tracks how far playback lags real time since it started (a device stall) and
        the depth's low point; True when a cut is due at this read."""
        if self.started_at is None:
            return False
        now = time.monotonic()
        due = round((now - self.started_at) * self.rate)
        lag = due - (self.consumed - self._start_consumed)
        if self._window_start is None:
            self._window_start, self._window_min, self._window_lag = now, self._depth, lag
        self._window_min = min(self._window_min, self._depth)
        self._window_lag = min(self._window_lag, lag)
        if now - self._window_start >= _TRIM_WINDOW_S:
            margin = round(_TRIM_MARGIN_S * self.rate)
            allowed = round(self._target_s() * self.rate) + margin + n
            self._excess = max(0, min(self._window_lag - margin, self._window_min - allowed))
            self._window_start, self._window_min, self._window_lag = now, self._depth, lag
        self._reads += 1
        if self._excess > _TRIM_HURRY_S * self.rate:
            return True
        return self._excess > 0 and self._reads % _TRIM_EVERY == 0

    def _accelerate_locked(self, out: Int16Array) -> int:
        """Fill `out` with its n samples' worth of audio minus up to 2.5 ms, the cut
        cross-faded; returns n, or 0 (nothing done) when too little is buffered."""
        n = out.size
        k = min(self._excess, round(_TRIM_MAX_S * self.rate), n // 4)
        fade = min(round(_TRIM_FADE_S * self.rate), n - k)
        if k <= 0 or fade <= 0 or self._depth < n + k:
            return 0
        taken = np.empty(n + k, dtype=np.int16)
        self._copy_out_locked(taken)
        w = np.linspace(0.0, 1.0, fade, endpoint=False)
        mixed = taken[:fade] * (1.0 - w) + taken[k : k + fade] * w
        out[:fade] = np.round(mixed).astype(np.int16)
        out[fade:] = taken[k + fade :]
        self._excess -= k
        self.trimmed_samples += k
        return n

    def clear(self) -> int:
        """Drop everything queued (a flush); returns the samples dropped. What was
        learnt about the link is kept."""
        with self._lock:
            dropped = self._depth
            self._chunks.clear()
            self._head = 0
            self._depth = 0
            self._playing = False
            self._first_wait = None
            self._dried_at = None  # a flush is not an underrun
            self._fade_in_next = False
            self._reply_t0 = None  # the next audio is a new reply
            self._excess = 0
            self._window_start = None
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
        self.consumed += filled
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
