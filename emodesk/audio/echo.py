"""Acoustic echo cancellation (WebRTC AEC3) fed with what the speaker actually played.

The output callback records every block it hands the device; the engine thread pushes
those samples here (at 16 kHz) and takes one far-end block per captured frame. Both
sides run on the same clock in real time, so the FIFO stays short; AEC3's own delay
estimator absorbs the remaining offset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pywebrtc_audio import AudioProcessor

from emodesk.core.pcm import MIC_RATE

Int16Array = np.ndarray[Any, np.dtype[np.int16]]

# Far-end audio older than this is dropped (capture paused while playback went on).
_MAX_FAR_S = 0.5
# A frame that found the reference short took zeros for the missing part; that much of
# the reference is skipped when it comes, so the pairing does not move with callback
# jitter. Owed beyond this (the capture clock running ahead), the pairing moves instead.
_MAX_DEBT_S = 0.04


class EchoCanceller:
    def __init__(self, stream_delay_ms: int = 0, rate: int = MIC_RATE) -> None:
        self.rate = rate
        self._aec = AudioProcessor(
            sample_rate=rate, echo_cancellation=True, stream_delay_ms=stream_delay_ms
        )
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
        return self.process_with_far(near, far)

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
