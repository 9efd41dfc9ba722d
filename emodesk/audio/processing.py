"""The per-frame capture chain after echo cancellation: noise gate, volume
normalisation and silence detection, each switched by a setting.

The dsp functions judge a whole buffer; here they run on a stream of short frames, so
the gate sees a little history (its release must span frame boundaries) and the
normalising gain follows the speech level slowly instead of pumping every frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emodesk.audio.settings import AudioSettings
from emodesk.core.pcm import MIC_RATE
from emodesk.dsp.levels import FLOOR_DBFS, SilenceDetector, noise_gate, rms_dbfs

Int16Array = np.ndarray[Any, np.dtype[np.int16]]

_GATE_RELEASE_MS = 150.0
_NORMALIZE_SMOOTHING = 0.1  # weight of a new speech frame in the running level


class CaptureProcessor:
    def __init__(self, settings: AudioSettings, rate: int = MIC_RATE) -> None:
        self._settings = settings
        self._rate = rate
        self._history = np.zeros(0, dtype=np.int16)
        self._history_len = round(rate * (_GATE_RELEASE_MS + 20.0) / 1000)
        self._speech_level: float | None = None
        self._silence = SilenceDetector(
            threshold_dbfs=settings.silence_threshold_dbfs,
            hangover_ms=settings.silence_hangover_ms,
            rate=rate,
        )

    @property
    def silent(self) -> bool:
        """True once the input has been quiet for the hangover (silence detection)."""
        return self._silence.silent

    @property
    def gain_db(self) -> float:
        """The normalising gain applied to the last frame (0 when off or unknown)."""
        return self._gain_db()

    def process(self, frame: Int16Array) -> Int16Array:
        s = self._settings
        out = frame
        if s.noise_gate:
            out = self._gate(frame)
        if s.silence_detection:
            self._silence.feed(frame)
        if s.normalize:
            out = self._normalize(out, rms_dbfs(frame))
        return out

    def _gate(self, frame: Int16Array) -> Int16Array:
        window = np.concatenate((self._history, frame))
        self._history = window[-self._history_len :]
        gated = noise_gate(
            window,
            self._settings.noise_gate_threshold_dbfs,
            self._rate,
            release_ms=_GATE_RELEASE_MS,
        )
        out: Int16Array = np.asarray(gated[-frame.size :], dtype=np.int16)
        return out

    def _gain_db(self) -> float:
        if self._speech_level is None:
            return 0.0
        s = self._settings
        return min(s.normalize_target_dbfs - self._speech_level, s.normalize_max_gain_db)

    def _normalize(self, frame: Int16Array, level: float) -> Int16Array:
        # Only frames that sound like speech move the running level, so pauses and hiss
        # are not boosted towards speech loudness.
        if level > max(self._settings.silence_threshold_dbfs, FLOOR_DBFS):
            if self._speech_level is None:
                self._speech_level = level
            else:
                a = _NORMALIZE_SMOOTHING
                self._speech_level = (1 - a) * self._speech_level + a * level
        gain = 10.0 ** (self._gain_db() / 20.0)
        if gain == 1.0:
            return frame
        scaled = np.rint(frame.astype(np.float64) * gain)
        clipped: Int16Array = np.clip(scaled, -32768, 32767).astype(np.int16)
        return clipped
