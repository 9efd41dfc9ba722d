"""Acoustic echo cancellation (WebRTC AEC3) fed with what the speaker actually played.

The output callback records every block it hands the device; the engine thread pushes
those samples here (at 16 kHz) and takes one far-end block per captured frame. Both
sides run on the same clock in real time, so the FIFO stays short; AEC3's own delay
estimator absorbs the remaining offset.

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

# Far-end audio older than this is dropped (capture paused while playback went on).
_MAX_FAR_S = 0.5
# A frame that found the reference short took zeros for the missing part; that much of
# the reference is skipped when it comes, so the pairing does not move with callback
# jitter. Owed beyond this (the capture clock running ahead), the pairing moves instead.
_MAX_DEBT_S = 0.04
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
        self._far = np.zeros(0, dtype=np.int16)
        self._max_far = int(rate * _MAX_FAR_S)
        self._max_debt = int(rate * _MAX_DEBT_S)
        self._debt = 0  # reference samples a frame went without, to skip when they come

    @property
    def buffered(self) -> int:
        """Reference samples waiting to be paired with captured audio."""
        return int(self._far.size)

    def push_far(self, samples: Int16Array) -> None:
        """Samples the speaker played, at `rate`, in order."""
        if self._debt:
            skip = min(self._debt, samples.size)
            self._debt -= skip
            samples = samples[skip:]
        if samples.size == 0:
            return
        far = np.concatenate((self._far, samples.astype(np.int16, copy=False)))
        if far.size > self._max_far:
            far = far[-self._max_far :]
        self._far = far

    def trim_far(self, keep: int) -> None:
        """Drop all but the newest `keep` far-end samples (stale reference)."""
        if self._far.size > keep:
            self._far = self._far[self._far.size - keep :]

    def process(self, near: Int16Array) -> Int16Array:
        """The captured frame with the speaker's echo removed (far end from `push_far`)."""
        n = near.size
        far = np.zeros(n, dtype=np.int16)
        take = min(n, self._far.size)
        far[:take] = self._far[:take]
        self._far = self._far[take:]
        self._debt = min(self._debt + n - take, self._max_debt)
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
        self._debt = 0
        with self._handover:
            self._generation += 1
            self._primed = None
            self._prime_done.clear()
        self._quiet_s, self._far_s, self._far_peak_db = 0.0, 0.0, -np.inf
        self._priming = False
        self.no_echo_path = False
