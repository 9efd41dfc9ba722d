"""Fundamental frequency (F0) by YIN (de Cheveigné & Kawahara 2002), vectorised over frames.

Every frame's difference function comes from one FFT cross-correlation plus cumulative
sums of squares, computed for a block of frames at once; the per-frame choice of period
(first dip of the cumulative-mean-normalised difference below the threshold, then down to
its local minimum, refined by parabolic interpolation) is array arithmetic as well. There
is no Python loop over frames or lags.

Frames are `hop_ms` apart and frame i is centred on sample (i + 0.5) * hop, so frame i
describes samples [i * hop, (i + 1) * hop) just as `levels.frame_levels_dbfs` does.
`YinTracker` does the same work incrementally for a stream, a few frames per call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from emodesk.core.pcm import MIC_RATE

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]

_BLOCK_FRAMES = 64  # frames per FFT block: fits in cache, bounds the time of one block


@dataclass(frozen=True)
class YinConfig:
    rate: int = MIC_RATE
    fmin: float = 60.0
    fmax: float = 500.0
    window_ms: float = 25.0  # integration window of the difference function
    hop_ms: float = 10.0
    threshold: float = 0.15  # CMND dip below which a frame counts as periodic
    silence_dbfs: float = -60.0  # frames quieter than this are unvoiced without looking

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {self.rate}")
        if not 0 < self.fmin < self.fmax < self.rate / 2:
            raise ValueError(
                f"need 0 < fmin < fmax < rate/2, got fmin={self.fmin} fmax={self.fmax}"
            )
        if self.hop_ms <= 0 or self.window_ms <= 0:
            raise ValueError("hop_ms and window_ms must be positive")

    @cached_property
    def hop(self) -> int:
        return max(1, round(self.rate * self.hop_ms / 1000.0))

    @cached_property
    def tau_min(self) -> int:
        return max(2, math.floor(self.rate / self.fmax))

    @cached_property
    def tau_max(self) -> int:
        return math.ceil(self.rate / self.fmin)

    @cached_property
    def window(self) -> int:
        # The window must hold at least one longest period for the dip to be reliable.
        return max(round(self.rate * self.window_ms / 1000.0), self.tau_max)

    @cached_property
    def frame_len(self) -> int:
        return self.window + self.tau_max + 1

    @cached_property
    def nfft(self) -> int:
        # Any length of at least a frame avoids wrap-around (see `yin_analysis`); the
        # smallest 2^k or 3 * 2^k is the quickest here (768 rather than 1024 at 16 kHz: the
        # three transforms of a block cost 40% less, the inverse one a quarter as much).
        power = 1 << (self.frame_len - 1).bit_length()
        return 3 * power // 4 if 3 * power // 4 >= self.frame_len else power

    @cached_property
    def taus(self) -> FloatArray:
        return np.arange(1, self.tau_max + 1, dtype=np.float64)


def yin_frames(frames: FloatArray, cfg: YinConfig) -> tuple[FloatArray, BoolArray]:
    """F0 (nan when unvoiced) and voicing for a block of frames (n x `cfg.frame_len`), each
    frame starting one window-centre lookbehind before the hop it describes."""
    f0, voiced, _aperiodicity = yin_analysis(frames, cfg)
    return f0, voiced


def window_energies(span: FloatArray, count: int, cfg: YinConfig) -> FloatArray:
    """For the `count` frames `cfg.hop` apart that start at `span`'s first sample: each
    frame's sum of x[t..t+w)^2 for t = 0..tau_max (what `yin_analysis` needs), from one
    running sum over the span instead of one per frame (the frames overlap fourfold)."""
    w, tau_max = cfg.window, cfg.tau_max
    sq = np.empty(span.size + 1)
    sq[0] = 0.0
    np.cumsum(span * span, out=sq[1:])
    sums = sq[w:] - sq[:-w]  # sums[k] = sum of span[k..k+w)^2
    view = np.lib.stride_tricks.sliding_window_view(sums, tau_max + 1)[:: cfg.hop][:count]
    return np.maximum(view, 0.0)


def yin_analysis(
    frames: FloatArray, cfg: YinConfig, energy: FloatArray | None = None
) -> tuple[FloatArray, BoolArray, FloatArray]:
    """`yin_frames` plus each frame's aperiodicity: the deepest dip of the normalised
    difference over the pitch range (0 perfectly periodic, about 1 for noise; 1 for a
    frame under `cfg.silence_dbfs`). A lenient threshold on it tells a voiced syllable
    nucleus that the strict F0 threshold missed (a rough or jittery voice). `energy`:
    the frames' `window_energies` when the caller has their span (else computed here)."""
    n = frames.shape[0]
    w, tau_max, nfft = cfg.window, cfg.tau_max, cfg.nfft
    if energy is None:
        sq = np.empty((n, frames.shape[1] + 1))
        sq[:, 0] = 0.0
        np.cumsum(frames * frames, axis=1, out=sq[:, 1:])
        energy = sq[:, w : w + tau_max + 1] - sq[:, : tau_max + 1]  # sum of x[t..t+w)^2
    loud = energy[:, 0] / w >= 10.0 ** (cfg.silence_dbfs / 10.0)
    if not loud.all():
        # Silent frames are unvoiced with aperiodicity 1 whatever their difference
        # function: only the others are transformed (pauses are a tenth of an utterance).
        f0 = np.full(n, np.nan)
        voiced = np.zeros(n, dtype=bool)
        aperiodicity = np.ones(n)
        if loud.any():
            f0[loud], voiced[loud], aperiodicity[loud] = yin_analysis(
                frames[loud], cfg, energy[loud]
            )
        return f0, voiced, aperiodicity
    spec = np.fft.rfft(frames, nfft, axis=1)
    head = np.fft.rfft(frames[:, :w], nfft, axis=1)
    # corr[t] = sum_{j<w} x[j] x[j+t]: no wrap-around since w + tau_max < frame_len <= nfft.
    corr = np.fft.irfft(spec * np.conj(head), nfft, axis=1)[:, : tau_max + 1]
    diff = energy[:, :1] + energy - 2.0 * corr
    np.maximum(diff, 0.0, out=diff)
    # Cumulative mean normalised difference; d'(0) = 1.
    running = np.cumsum(diff[:, 1:], axis=1)
    taus = cfg.taus
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus / np.maximum(running, 1e-20)

    lo = cfg.tau_min
    search = cmnd[:, lo:tau_max]  # lags lo .. tau_max-1, so tau+1 exists for interpolation
    below = search < cfg.threshold
    has_dip = below.any(axis=1)
    first = np.argmax(below, axis=1)
    # From the first lag under the threshold, walk down to the bottom of that dip.
    rising = np.empty_like(below)
    rising[:, :-1] = search[:, 1:] >= search[:, :-1]
    rising[:, -1] = True
    cols = np.arange(search.shape[1])
    bottom = np.argmax(rising & (cols >= first[:, None]), axis=1)
    tau = bottom + lo
    rows = np.arange(n)
    # Parabolic interpolation around the chosen lag for sub-sample precision.
    left = cmnd[rows, tau - 1]
    mid = cmnd[rows, tau]
    right = cmnd[rows, tau + 1]
    denom = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / denom, 0.0)
    shift = np.clip(shift, -1.0, 1.0)
    f0 = np.where(has_dip, cfg.rate / (tau + shift), np.nan)
    return f0, np.asarray(has_dip, dtype=bool), search.min(axis=1)


def _frame_block(padded: FloatArray, start_frame: int, count: int, cfg: YinConfig) -> FloatArray:
    hop, length = cfg.hop, cfg.frame_len
    base = start_frame * hop
    view = np.lib.stride_tricks.sliding_window_view(
        padded[base : base + (count - 1) * hop + length], length
    )[::hop]
    return np.ascontiguousarray(view)


def yin(
    x: np.ndarray[Any, Any],
    rate: int,
    fmin: float = 60.0,
    fmax: float = 500.0,
    *,
    window_ms: float = 25.0,
    hop_ms: float = 10.0,
    threshold: float = 0.15,
) -> tuple[FloatArray, BoolArray]:
    """F0 in Hz per hop (nan where unvoiced) and the voiced mask, one entry per whole hop.

    `x` is float in [-1, 1] or int16 (scaled). Frames are analysed centred on each hop.
    """
    cfg = YinConfig(rate, fmin, fmax, window_ms, hop_ms, threshold)
    a = np.asarray(x)
    signal = a.astype(np.float64) / 32768.0 if a.dtype.kind in "iu" else a.astype(np.float64)
    signal = signal.reshape(-1)
    n_frames = signal.size // cfg.hop
    if n_frames == 0:
        return np.empty(0), np.zeros(0, dtype=bool)
    # Centre frame i on (i + 0.5) * hop: pad so the frame starting at i * hop is centred there.
    pad_front = cfg.frame_len // 2 - cfg.hop // 2
    padded = np.zeros(pad_front + n_frames * cfg.hop + cfg.frame_len)
    padded[pad_front : pad_front + signal.size] = signal[: padded.size - pad_front]
    f0 = np.empty(n_frames)
    voiced = np.empty(n_frames, dtype=bool)
    for start in range(0, n_frames, _BLOCK_FRAMES):
        count = min(_BLOCK_FRAMES, n_frames - start)
        block_f0, block_voiced = yin_frames(_frame_block(padded, start, count, cfg), cfg)
        f0[start : start + count] = block_f0
        voiced[start : start + count] = block_voiced
    return f0, voiced


class YinTracker:
    """YIN for a stream: feed samples in any chunk sizes, get F0 for each finished hop.

    Output frames are the same as `yin` over the concatenated stream, except that the
    last frames wait for their lookahead (half a frame) until `flush()`.
    """

    def __init__(self, config: YinConfig | None = None) -> None:
        self.config = config or YinConfig()
        pad_front = self.config.frame_len // 2 - self.config.hop // 2
        self._buf = np.zeros(pad_front)  # samples not yet consumed by a whole frame
        self._frames_done = 0

    def feed(self, chunk: np.ndarray[Any, Any]) -> tuple[FloatArray, BoolArray]:
        a = np.asarray(chunk).reshape(-1)
        samples = a.astype(np.float64) / 32768.0 if a.dtype.kind in "iu" else a.astype(np.float64)
        self._buf = np.concatenate((self._buf, samples))
        return self._drain()

    def flush(self) -> tuple[FloatArray, BoolArray]:
        """Frames still waiting for lookahead, analysed with zeros after the end."""
        cfg = self.config
        # Only hops whose start was fed count, as in `yin`.
        pending_samples = self._buf.size - (cfg.frame_len // 2 - cfg.hop // 2)
        n_more = max(0, pending_samples // cfg.hop)
        if n_more == 0:
            return np.empty(0), np.zeros(0, dtype=bool)
        self._buf = np.concatenate((self._buf, np.zeros(cfg.frame_len)))
        f0, voiced = self._drain(limit=n_more)
        self._buf = np.zeros(cfg.frame_len // 2 - cfg.hop // 2)
        return f0, voiced

    def _drain(self, limit: int | None = None) -> tuple[FloatArray, BoolArray]:
        cfg = self.config
        available = (
            0 if self._buf.size < cfg.frame_len else 1 + (self._buf.size - cfg.frame_len) // cfg.hop
        )
        if limit is not None:
            available = min(available, limit)
        if available == 0:
            return np.empty(0), np.zeros(0, dtype=bool)
        f0, voiced = yin_frames(_frame_block(self._buf, 0, available, cfg), cfg)
        self._buf = self._buf[available * cfg.hop :]
        self._frames_done += available
        return f0, voiced
