"""Signal levels: RMS and peak in dBFS, a noise gate, volume normalisation, silence detection.

Levels are in dBFS with int16 full scale (32768) as 0 dBFS; float input is taken as
already scaled to [-1, 1]. Digital silence reads as `FLOOR_DBFS` rather than -inf so the
numbers stay finite in plots, CSV and arithmetic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from emodesk.core.pcm import MIC_RATE

FLOOR_DBFS = -120.0
INT16_FULL_SCALE = 32768.0
_FLOOR_POWER = 10.0 ** (FLOOR_DBFS / 10.0)

Array = np.ndarray[Any, Any]


def to_float(x: Array) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Samples as float64 in [-1, 1]: integers are scaled by their full scale."""
    a = np.asarray(x)
    if a.dtype.kind in "iu":
        if a.dtype == np.uint8:  # 8-bit WAV is unsigned around 128
            return (a.astype(np.float64) - 128.0) / 128.0
        full_scale = float(2 ** (8 * a.dtype.itemsize - 1))
        return a.astype(np.float64) / full_scale
    return a.astype(np.float64, copy=False)


def power_to_dbfs(power: float) -> float:
    return FLOOR_DBFS if power <= _FLOOR_POWER else 10.0 * math.log10(power)


def rms_dbfs(x: Array) -> float:
    """RMS level in dBFS; empty or silent input gives `FLOOR_DBFS`."""
    a = to_float(x)
    if a.size == 0:
        return FLOOR_DBFS
    return power_to_dbfs(float(np.mean(a * a)))


def peak_dbfs(x: Array) -> float:
    """Peak level in dBFS; empty or silent input gives `FLOOR_DBFS`."""
    a = to_float(x)
    if a.size == 0:
        return FLOOR_DBFS
    peak = float(np.max(np.abs(a)))
    return power_to_dbfs(peak * peak)


_LEVEL_BLOCK_SAMPLES = 1 << 18  # 16 s at 16 kHz: 2 MB of float64 per block


def frame_levels_dbfs(x: Array, frame_len: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """RMS level in dBFS of each whole frame of `frame_len` samples (a trailing part is dropped)."""
    if frame_len <= 0:
        raise ValueError(f"frame_len must be positive, got {frame_len}")
    samples = np.asarray(x)
    n = samples.size // frame_len
    power = np.empty(n, dtype=np.float64)
    # Whole frames a block at a time: an hour of 16 kHz int16 would otherwise need a
    # 460 MB float64 copy just to measure its levels.
    step = max(1, _LEVEL_BLOCK_SAMPLES // frame_len)
    for first in range(0, n, step):
        last = min(n, first + step)
        block = to_float(samples[first * frame_len : last * frame_len])
        frames = block.reshape(last - first, frame_len)
        power[first:last] = np.einsum("ij,ij->i", frames, frames) / frame_len
    out: np.ndarray[Any, np.dtype[np.float64]] = 10.0 * np.log10(np.maximum(power, _FLOOR_POWER))
    return out


def _to_int16(a: Array) -> np.ndarray[Any, np.dtype[np.int16]]:
    return np.clip(np.rint(a * INT16_FULL_SCALE), -32768, 32767).astype(np.int16)


def noise_gate(
    x: Array,
    threshold_dbfs: float,
    rate: int = MIC_RATE,
    *,
    block_ms: float = 10.0,
    attack_ms: float = 10.0,
    release_ms: float = 150.0,
) -> Array:
    """Silence the stretches below `threshold_dbfs`, measured over short blocks.

    The gate opens `attack_ms` before a loud block and closes only after `release_ms`
    of quiet, and the gain ramps over one block instead of switching per sample, so word
    onsets, soft consonants and the tails of words survive. Returns the input's dtype.
    """
    a = np.asarray(x)
    if a.size == 0:
        return a.copy()
    block = max(1, round(rate * block_ms / 1000.0))
    n_blocks = math.ceil(a.size / block)
    padded = np.zeros(n_blocks * block, dtype=np.float64)
    padded[: a.size] = to_float(a)
    levels = frame_levels_dbfs(padded, block)
    is_open = levels >= threshold_dbfs
    # Widen every open block backwards by the attack and forwards by the release.
    before = math.ceil(attack_ms / block_ms)
    after = math.ceil(release_ms / block_ms)
    # Block i is open when any block in [i - after, i + before] is loud: a cumulative sum.
    counts = np.concatenate(([0], np.cumsum(is_open.astype(np.int32))))
    lo = np.clip(np.arange(n_blocks) - after, 0, n_blocks)
    hi = np.clip(np.arange(n_blocks) + before + 1, 0, n_blocks)
    block_gain = ((counts[hi] - counts[lo]) > 0).astype(np.float64)
    centres = (np.arange(n_blocks) + 0.5) * block
    gain = np.interp(np.arange(a.size), centres, block_gain)
    gated = to_float(a) * gain
    if a.dtype == np.int16:
        return _to_int16(gated)
    if a.dtype.kind == "f":
        return gated.astype(a.dtype)
    return gated


def normalize_volume(
    x: Array, target_rms_dbfs: float = -20.0, max_gain_db: float = 20.0
) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Scale to `target_rms_dbfs`, boosting by at most `max_gain_db`; int16, clipped.

    Silence stays silence (the boost limit keeps hiss from being raised to speech level).
    """
    a = to_float(x)
    if a.size == 0:
        return np.zeros(0, dtype=np.int16)
    level = rms_dbfs(a)
    if level <= FLOOR_DBFS:
        return _to_int16(a)
    gain_db = min(target_rms_dbfs - level, max_gain_db)
    return _to_int16(a * 10.0 ** (gain_db / 20.0))


class SilenceDetector:
    """Says whether the input has been below `threshold_dbfs` for at least `hangover_ms`.

    Feed consecutive frames of any length; each call judges the frame's RMS level. The
    hangover keeps short gaps between words from reading as silence. Starts silent.
    """

    def __init__(
        self, threshold_dbfs: float = -45.0, hangover_ms: float = 500.0, rate: int = MIC_RATE
    ):
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if hangover_ms < 0:
            raise ValueError(f"hangover_ms must be >= 0, got {hangover_ms}")
        self.threshold_dbfs = threshold_dbfs
        self._hangover_samples = round(rate * hangover_ms / 1000.0)
        self._quiet_samples = self._hangover_samples  # start silent
        self.level_dbfs = FLOOR_DBFS

    @property
    def silent(self) -> bool:
        return self._quiet_samples >= self._hangover_samples

    def feed(self, frame: Array) -> bool:
        """Judge one frame; returns True when the input is silent now."""
        n = int(np.asarray(frame).size)
        if n == 0:
            return self.silent
        self.level_dbfs = rms_dbfs(frame)
        if self.level_dbfs >= self.threshold_dbfs:
            self._quiet_samples = 0
        else:
            self._quiet_samples = min(self._quiet_samples + n, self._hangover_samples)
        return self.silent

    def reset(self) -> None:
        self._quiet_samples = self._hangover_samples
        self.level_dbfs = FLOOR_DBFS
