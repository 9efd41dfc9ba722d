"""Acoustic echo cancellation (WebRTC AEC3) fed with what the speaker actually played.

The output callback records every block it hands the device; the engine thread pushes
those samples here (at 16 kHz, by their index on the far end's counter) and pairs each
captured frame with the reference that sounded just after it was captured
(`audio/alignment.py`); AEC3's own delay estimator absorbs the echo's path from there.

No echo path (headphones, or a microphone that cannot hear the speaker): AEC3 needs about
6 s of reply audio to learn that, and until then it suppresses everything said over a
reply, so the server never hears a barge-in (`make bench`: 380-425 ms, the reply played
on). Where the microphone stays quiet through `_NO_ECHO_RUN_S` of capture that held
`_NO_ECHO_FAR_S` of loud reply, there is no echo path shorter than that: a fresh
canceller is shown `_PRIME_S` of reply-like sound with a silent microphone, on a thread
of its own, and takes over. It then passes speech over a reply at once. An echo path
that appears later (the headphones come off) is found as AEC3 finds it after learning by
itself: a few hundred milliseconds of leak, then full cancellation.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
from pywebrtc_audio import AudioProcessor

from emodesk.core.pcm import MIC_RATE
from emodesk.dsp.levels import rms_dbfs

log = logging.getLogger(__name__)

Int16Array = np.ndarray[Any, np.dtype[np.int16]]

# Reference older than this is dropped. A frame is paired with what sounded just after
# it was captured, some 60-80 ms back when the engine thread keeps up; this much covers
# it falling behind for most of a second.
_MAX_FAR_S = 1.0
# No echo path: the microphone quiet (under -70 dBFS, or 35 dB under the loudest reply
# frame of the run) for this long, with this much reply louder than -45 dBFS in it.
# Longer than any echo path's delay, so an echo would have shown.
_NO_ECHO_RUN_S = 0.8
_NO_ECHO_FAR_S = 0.5
_FAR_LOUD_DBFS = -45.0
_NEAR_QUIET_DBFS = -70.0
_NEAR_QUIET_UNDER_FAR_DB = 35.0
_PRIME_S = 8.0  # AEC3 turned transparent after 6 s of it, not after 5
_PRIME_BLOCK = 160  # 10 ms at 16 kHz: AEC3's own block


def _priming_sound(rate: int) -> Int16Array:
    """Reply-like sound for the fresh canceller: a voice's harmonics (150 Hz) under a
    4 Hz syllable envelope, about -20 dBFS."""
    t = np.arange(round(_PRIME_S * rate)) / rate
    voice = sum(np.sin(2 * np.pi * k * 150.0 * t) / k for k in range(1, 8))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    out: Int16Array = (voice * syllables * 2000.0).astype(np.int16)
    return out


def _primed_processor(rate: int, stream_delay_ms: int) -> AudioProcessor:
    """A canceller that has heard `_PRIME_S` of reply and no echo of it."""
    aec = AudioProcessor(sample_rate=rate, echo_cancellation=True, stream_delay_ms=stream_delay_ms)
    far = _priming_sound(rate)
    silent = np.zeros(_PRIME_BLOCK, dtype=np.int16)
    for i in range(0, far.size - _PRIME_BLOCK + 1, _PRIME_BLOCK):
        aec.process(silent, far[i : i + _PRIME_BLOCK])
        time.sleep(0)  # let the audio threads have the interpreter between blocks
    return aec


class EchoCanceller:
    def __init__(self, stream_delay_ms: int = 0, rate: int = MIC_RATE) -> None:
        self.rate = rate
        self._delay_ms = stream_delay_ms
        self._aec = AudioProcessor(
            sample_rate=rate, echo_cancellation=True, stream_delay_ms=stream_delay_ms
        )
        # No-echo evidence: the current run of quiet capture, the loud reply in it, and
        # its loudest reply frame; then the primed canceller, made on a thread.
        self._quiet_s = 0.0
        self._far_s = 0.0
        self._far_peak_db = -np.inf
        self._priming = False
        self._primed: AudioProcessor | None = None
        self._generation = 0  # a reset discards a canceller still being primed
        self._handover = threading.Lock()
        self._prime_done = threading.Event()
        self.no_echo_path = False  # found, and the primed canceller took over
        # The reference: samples the speaker played, by their index on the far end's
        # 16 kHz counter (`push_far`); `_next` is where a frame with no index given is
        # paired (the one after the last frame's reference).
        self._far = np.zeros(0, dtype=np.int16)
        self._far_first = 0  # index of _far[0]
        self._next = 0
        self._max_far = int(rate * _MAX_FAR_S)

    @property
    def far_end(self) -> int:
        """The index after the newest reference sample."""
        return self._far_first + int(self._far.size)

    @property
    def buffered(self) -> int:
        """Reference samples not yet paired with captured audio."""
        return max(0, self.far_end - self._next)

    def push_far(self, samples: Int16Array, at: int | None = None) -> None:
        """Samples the speaker played, at `rate`, in order; `at`: the index of the first
        (default: right after the last). An index that does not follow the last starts
        the reference afresh (a stream restarted or reopened)."""
        data = samples.astype(np.int16, copy=False).reshape(-1)
        if at is not None and at != self.far_end:
            self._far, self._far_first = data.copy(), at
            if self._next < at or self._next > at + data.size + self._max_far:
                self._next = at
        else:
            self._far = np.concatenate((self._far, data))
        if self._far.size > self._max_far:
            drop = self._far.size - self._max_far
            self._far, self._far_first = self._far[drop:], self._far_first + drop

    def process(self, near: Int16Array, far_at: int | None = None) -> Int16Array:
        """The captured frame with the speaker's echo removed, paired with the reference
        from index `far_at` (default: right after the last frame's); where that
        reference is not held (not played yet, or long gone) it is silence."""
        n = near.size
        start = self._next if far_at is None else far_at
        far = np.zeros(n, dtype=np.int16)
        lo, hi = max(start, self._far_first), min(start + n, self.far_end)
        if lo < hi:
            far[lo - start : hi - start] = self._far[lo - self._far_first : hi - self._far_first]
        self._next = start + n
        self._watch_for_no_echo(near, far)
        return self.process_with_far(near, far)

    def _watch_for_no_echo(self, near: Int16Array, far: Int16Array) -> None:
        if self._primed is not None:
            with self._handover:
                self._aec, self._primed = self._primed, None
            self.no_echo_path = True
            log.info("no echo path: the microphone stayed quiet through a reply")
        if self._priming or self.no_echo_path:
            return
        far_db = rms_dbfs(far)
        seconds = near.size / self.rate
        if far_db > _FAR_LOUD_DBFS:
            self._far_peak_db = max(self._far_peak_db, far_db)
        quiet_below = max(_NEAR_QUIET_DBFS, self._far_peak_db - _NEAR_QUIET_UNDER_FAR_DB)
        if rms_dbfs(near) >= quiet_below:
            self._quiet_s, self._far_s, self._far_peak_db = 0.0, 0.0, -np.inf
            return
        self._quiet_s += seconds
        if far_db > _FAR_LOUD_DBFS:
            self._far_s += seconds
        if self._quiet_s >= _NO_ECHO_RUN_S and self._far_s >= _NO_ECHO_FAR_S:
            self._priming = True
            generation = self._generation
            threading.Thread(
                target=self._prime, args=(generation,), name="aec-prime", daemon=True
            ).start()

    def _prime(self, generation: int) -> None:
        aec = _primed_processor(self.rate, self._delay_ms)
        with self._handover:
            if generation == self._generation:
                self._primed = aec
                self._prime_done.set()

    def wait_for_priming(self, timeout: float) -> bool:
        """True once a primed canceller is ready (it takes over at the next frame)."""
        return self._prime_done.wait(timeout)

    def process_with_far(self, near: Int16Array, far: Int16Array) -> Int16Array:
        """One frame with an explicit far-end frame of the same length."""
        out: Int16Array = self._aec.process(
            np.ascontiguousarray(near, dtype=np.int16), np.ascontiguousarray(far, dtype=np.int16)
        )
        return out

    def reset(self) -> None:
        self._aec.reset()
        self._far = np.zeros(0, dtype=np.int16)
        self._far_first = self._next = 0
        with self._handover:
            self._generation += 1
            self._primed = None
            self._prime_done.clear()
        self._quiet_s, self._far_s, self._far_peak_db = 0.0, 0.0, -np.inf
        self._priming = False
        self.no_echo_path = False
