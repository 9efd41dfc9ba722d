"""Prosody features of one utterance, after eGeMAPS (Eyben et al. 2016, IEEE Trans. Affective
Computing 7(2)) — its definitions, not its runtime.

Low-level descriptors per 10 ms hop, all frames centred on the hop (see `pitch`):
- F0 by YIN, in semitones from 27.5 Hz as eGeMAPS' `F0semitoneFrom27.5Hz`.
- level in dBFS (RMS of the hop) and a loudness proxy: the sum over 20 mel bands of band
  power^0.3 (Stevens' power law, as eGeMAPS' auditory-spectrum `loudness`), 25 ms Hamming.
- alpha ratio: energy 1–5 kHz over energy 50 Hz–1 kHz in dB (openSMILE's sign: higher is a
  flatter, more effortful spectrum) and the Hammarberg index: strongest peak 0–2 kHz over
  strongest peak 2–5 kHz in dB; both over voiced frames only, as in eGeMAPS.
Functionals per utterance:
- `f0_mean_st`, `f0_std_st`, `f0_range_st` (20th–80th percentile range, eGeMAPS
  `pctlrange0-2`), over voiced frames; nan when fewer than `MIN_VOICED_FRAMES`.
- `voiced_ratio`: periodic hops (YIN dip under `VOICING_APERIODICITY`, more lenient than the
  F0 threshold so a rough or jittery voice counts as voiced) / active (speech-level) hops.
- `loudness_dbfs`: RMS level over active frames; `loudness_proxy`: mean loudness there.
- `syllable_rate`: syllable nuclei per second of speaking time (articulation rate), after
  de Jong & Wempe (2009, Behavior Research Methods 41(2)): peaks of the intensity contour
  (here of the 500-3000 Hz band, where vowels are strong and nasals and liquids weak, so
  the dip between two syllables joined by a sonorant is deeper than in full-band level) that
  stand `NUCLEUS_MIN_DIP_DB` above the dip before the next peak, lie within
  `NUCLEUS_BELOW_PEAK_DB` of the utterance's loud hops, and are voiced. Speaking time
  (`speaking_s`) is the active span less its pauses, so pauses do not count as slow speech
  (they are `pause_ratio`'s). This is the speaking-rate cue the estimator uses.
- `rate_per_s`: voiced segments per second (eGeMAPS `VoicedSegmentsPerSec`), counted after
  bridging pitch-tracker dropouts (see `MAX_BRIDGED_GAP_FRAMES`), and `loudness_peaks_per_s`
  (eGeMAPS `loudnessPeaksPerSec`), kept for comparison with openSMILE: both move with
  pitch and voice quality as much as with tempo (segments merge as gaps shrink and split
  where the tracker drops a rough voice), so neither is used as the rate cue.
- `pause_ratio`: share of the span between the first and last active frame that lies in
  quiet runs of at least `MIN_PAUSE_MS`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from emodesk.core.pcm import MIC_RATE
from emodesk.dsp.levels import FLOOR_DBFS, to_float
from emodesk.dsp.pitch import YinConfig, window_energies, yin, yin_analysis

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

RATE = MIC_RATE
HOP_MS = 10.0
SPECTRAL_WINDOW_MS = 25.0
N_MEL_BANDS = 20
MIN_VOICED_FRAMES = 3
# Voiced segments: unvoiced gaps up to 30 ms inside voicing are pitch-tracker dropouts, not
# consonants (a voiceless stop or fricative lasts 50-150 ms), and voiced runs under 50 ms are
# not syllable nuclei. Without both, one syllable counts two or three times: with them the
# count agrees with openSMILE's eGeMAPS `VoicedSegmentsPerSec` to within about 1/s.
MAX_BRIDGED_GAP_FRAMES = 3
MIN_VOICED_SEGMENT_FRAMES = 5
MIN_PAUSE_MS = 100.0
# Syllable nuclei (de Jong & Wempe 2009): the intensity contour is the 500-3000 Hz band power
# of the 25 ms spectral frames smoothed by a 50 ms Hann window, so a low voice's
# period-to-period ripple makes no peaks of its own. On six synthetic voices (espeak-ng and
# flite) the count is 1.07 +- 0.09 times the sentences' syllables; full-band intensity gave
# 1.13 +- 0.15 and lost a syllable in four at a 40% faster tempo (tests/dsp: the rate cue).
NUCLEUS_BAND_HZ = (500.0, 3000.0)
INTENSITY_KERNEL = np.hanning(7)[1:-1] / np.hanning(7)[1:-1].sum()
NUCLEUS_BELOW_PEAK_DB = 25.0  # peaks further under the 99th-percentile hop are not syllables
NUCLEUS_MIN_DIP_DB = 1.5  # a peak must stand this far above the dip before the next peak
# A hop is voiced (for `voiced_ratio` and syllable nuclei) when its YIN dip is under this:
# more lenient than the F0 threshold (0.15), which missed 60-80% of the voiced hops of a
# rough synthetic voice (flite kal16); noise stays far above it (white, pink, low-passed
# noise: no hop under 0.6). A peak is voiced when a hop within +-20 ms is.
VOICING_APERIODICITY = 0.35
NUCLEUS_VOICING_HOPS = 2
ACTIVE_ABS_DBFS = -50.0  # quieter hops are never speech
ACTIVE_BELOW_PEAK_DB = 30.0  # nor are hops this far under the utterance's loud hops
ST_REF_HZ = 27.5
_EPS = 1e-12


@dataclass(frozen=True)
class ProsodyFeatures:
    duration_s: float
    f0_mean_st: float
    f0_range_st: float
    f0_std_st: float
    voiced_ratio: float
    loudness_dbfs: float
    loudness_proxy: float
    alpha_ratio_db: float
    hammarberg_db: float
    rate_per_s: float
    pause_ratio: float
    loudness_peaks_per_s: float = 0.0
    syllable_rate: float = math.nan  # nuclei per second of speaking time; nan without any
    speaking_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class FrameTracks:
    """Per-hop low-level descriptors; all arrays have one entry per hop."""

    level_dbfs: FloatArray
    f0_hz: FloatArray
    voiced: np.ndarray[Any, np.dtype[np.bool_]]
    loudness: FloatArray
    alpha_db: FloatArray
    hammarberg_db: FloatArray
    aperiodicity: FloatArray  # YIN's deepest dip: 0 periodic .. about 1 noise
    nucleus_db: FloatArray  # 500-3000 Hz band power in dB (syllable nuclei)

    @classmethod
    def empty(cls) -> FrameTracks:
        e = np.empty(0)
        return cls(e, e, np.zeros(0, dtype=bool), e, e, e, e, e)

    def __len__(self) -> int:
        return int(self.level_dbfs.size)


class _Spectral:
    """Mel-band loudness, alpha ratio and Hammarberg index for blocks of frames."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.hop = round(rate * HOP_MS / 1000.0)
        self.frame_len = round(rate * SPECTRAL_WINDOW_MS / 1000.0)
        self.nfft = 1 << (self.frame_len - 1).bit_length()
        self.window = np.hamming(self.frame_len)
        freqs: FloatArray = np.fft.rfftfreq(self.nfft, 1.0 / rate).astype(np.float64)
        self.low = (freqs >= 50.0) & (freqs < 1000.0)
        self.high = (freqs >= 1000.0) & (freqs < min(5000.0, rate / 2))
        self.peak_low = freqs < 2000.0
        self.peak_high = (freqs >= 2000.0) & (freqs < min(5000.0, rate / 2))
        lo, hi = NUCLEUS_BAND_HZ
        self.nucleus = (freqs >= lo) & (freqs < min(hi, rate / 2))
        self.mel = _mel_filterbank(freqs, N_MEL_BANDS, 50.0, min(8000.0, rate / 2))

    def analyse(self, frames: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        spec = np.fft.rfft(frames * self.window, self.nfft, axis=1)
        power = spec.real**2 + spec.imag**2
        loudness = np.sum(np.power(power @ self.mel + _EPS, 0.3), axis=1)
        low = power[:, self.low].sum(axis=1) + _EPS
        high = power[:, self.high].sum(axis=1) + _EPS
        alpha = 10.0 * np.log10(high / low)
        peak_low = power[:, self.peak_low].max(axis=1) + _EPS
        peak_high = power[:, self.peak_high].max(axis=1) + _EPS
        hammarberg = 10.0 * np.log10(peak_low / peak_high)
        nucleus = 10.0 * np.log10(power[:, self.nucleus].sum(axis=1) + _EPS)
        return loudness, alpha, hammarberg, nucleus


@cache
def _spectral(rate: int) -> _Spectral:
    """One `_Spectral` per rate (its mel filterbank is built once, not per utterance)."""
    return _Spectral(rate)


def _mel(f: FloatArray | float) -> Any:
    return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def _mel_filterbank(freqs: FloatArray, n_bands: int, fmin: float, fmax: float) -> FloatArray:
    edges_mel = np.linspace(_mel(fmin), _mel(fmax), n_bands + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    bank = np.zeros((freqs.size, n_bands))
    for b in range(n_bands):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        bank[:, b] = np.clip(np.minimum(up, down), 0.0, None)
    return bank


def frame_tracks(pcm: np.ndarray[Any, Any], rate: int = RATE) -> FrameTracks:
    """Low-level descriptors of a whole buffer (int16 or float in [-1, 1])."""
    stream = ProsodyStream(rate, block_hops=BATCH_BLOCK_HOPS)
    stream.feed(pcm)
    return stream.finish_tracks()


def extract_features(pcm16: np.ndarray[Any, Any], rate: int = RATE) -> ProsodyFeatures:
    """eGeMAPS-style prosody functionals of one utterance."""
    samples = to_float(pcm16).reshape(-1)
    tracks = frame_tracks(samples, rate)
    return summarise(tracks, samples.size / rate)


def _runs(mask: np.ndarray[Any, np.dtype[np.bool_]]) -> tuple[Any, Any]:
    """Start and end (exclusive) indices of runs of True."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _voiced_segments(voiced: np.ndarray[Any, np.dtype[np.bool_]]) -> int:
    """Voiced segments long enough to be syllable nuclei, after bridging pitch dropouts."""
    gap_starts, gap_ends = _runs(~voiced)
    bridge = (
        (gap_ends - gap_starts <= MAX_BRIDGED_GAP_FRAMES)
        & (gap_starts > 0)
        & (gap_ends < voiced.size)
    )
    edges = np.zeros(voiced.size + 1, dtype=np.int64)
    np.add.at(edges, gap_starts[bridge], 1)
    np.add.at(edges, gap_ends[bridge], -1)
    joined = voiced | (np.cumsum(edges[:-1]) > 0)
    starts, ends = _runs(joined)
    return int(np.sum((ends - starts) >= MIN_VOICED_SEGMENT_FRAMES))


def syllable_nuclei(
    band_db: FloatArray,
    aperiodicity: FloatArray,
    active: np.ndarray[Any, np.dtype[np.bool_]],
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Hop indices of syllable nuclei: voiced peaks of the smoothed intensity contour (from
    per-hop band power in dB) with a dip of at least `NUCLEUS_MIN_DIP_DB` before the next
    peak (de Jong & Wempe 2009)."""
    n = band_db.size
    none = np.zeros(0, dtype=np.int64)
    if n < 3 or not active.any():
        return none
    power = np.power(10.0, band_db / 10.0)
    intensity = 10.0 * np.log10(np.convolve(power, INTENSITY_KERNEL, mode="same") + 1e-12)
    floor = float(np.percentile(intensity[active], 99)) - NUCLEUS_BELOW_PEAK_DB
    inner = intensity[1:-1]
    is_peak = (inner > intensity[:-2]) & (inner >= intensity[2:]) & (inner > floor)
    peaks = np.flatnonzero(is_peak) + 1
    peaks = peaks[active[peaks]]
    if peaks.size == 0:
        return none
    # Voiced: the most periodic hop within +-NUCLEUS_VOICING_HOPS is periodic enough.
    k = NUCLEUS_VOICING_HOPS
    padded = np.concatenate((np.ones(k), aperiodicity, np.ones(k)))
    near = np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1)[peaks]
    peaks = peaks[near.min(axis=1) < VOICING_APERIODICITY]
    if peaks.size == 0:
        return none
    # The dip between each peak and the next (the last peak has none to clear).
    dips = np.minimum.reduceat(intensity, peaks)  # minimum from each peak to the next one
    keep = np.ones(peaks.size, dtype=bool)
    keep[:-1] = intensity[peaks[:-1]] - dips[:-1] >= NUCLEUS_MIN_DIP_DB
    nuclei: np.ndarray[Any, np.dtype[np.int64]] = peaks[keep]
    return nuclei


def summarise(tracks: FrameTracks, duration_s: float) -> ProsodyFeatures:
    """Utterance functionals from per-hop descriptors."""
    n = len(tracks)
    nan = math.nan
    if n == 0 or duration_s <= 0:
        return ProsodyFeatures(max(duration_s, 0.0), nan, nan, nan, 0.0, FLOOR_DBFS, 0.0,
                               nan, nan, 0.0, 0.0, 0.0, nan, 0.0)  # fmt: skip
    level = tracks.level_dbfs
    loud_ref = float(np.percentile(level, 95))
    active = level > max(ACTIVE_ABS_DBFS, loud_ref - ACTIVE_BELOW_PEAK_DB)
    voiced = tracks.voiced & active
    n_active = int(active.sum())

    f0 = tracks.f0_hz[voiced]
    if f0.size >= MIN_VOICED_FRAMES:
        st = 12.0 * np.log2(f0 / ST_REF_HZ)
        f0_mean = float(st.mean())
        f0_std = float(st.std())
        p20, p80 = np.percentile(st, [20, 80])
        f0_range = float(p80 - p20)
    else:
        f0_mean = f0_std = f0_range = nan

    if n_active:
        power = 10.0 ** (level[active] / 10.0)
        loudness_dbfs = 10.0 * math.log10(max(float(power.mean()), 1e-12))
        loudness_proxy = float(tracks.loudness[active].mean())
    else:
        loudness_dbfs, loudness_proxy = FLOOR_DBFS, 0.0

    if voiced.any():
        alpha = float(tracks.alpha_db[voiced].mean())
        hammarberg = float(tracks.hammarberg_db[voiced].mean())
    else:
        alpha = hammarberg = nan

    rate_per_s = _voiced_segments(voiced) / duration_s

    # Loudness peaks: local maxima of the lightly smoothed contour that stand out.
    smooth = np.convolve(tracks.loudness, np.ones(5) / 5.0, mode="same")
    if smooth.size >= 3 and n_active:
        is_peak = (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:])
        floor = float(np.percentile(smooth[active], 25)) if n_active else 0.0
        is_peak &= smooth[1:-1] > floor
        is_peak &= active[1:-1]
        peaks_per_s = int(is_peak.sum()) / duration_s
    else:
        peaks_per_s = 0.0

    if n_active:
        first, last = np.flatnonzero(active)[[0, -1]]
        span = ~active[first : last + 1]
        p_starts, p_ends = _runs(span)
        min_pause = math.ceil(MIN_PAUSE_MS / HOP_MS)
        lengths = p_ends - p_starts
        paused = int(lengths[lengths >= min_pause].sum())
        pause_ratio = paused / span.size
        periodic = tracks.aperiodicity < VOICING_APERIODICITY
        voiced_ratio = int((periodic & active).sum()) / n_active
        speaking_s = (span.size - paused) * HOP_MS / 1000.0
    else:
        pause_ratio, voiced_ratio, speaking_s = 0.0, 0.0, 0.0

    nuclei = syllable_nuclei(tracks.nucleus_db, tracks.aperiodicity, active)
    syllable_rate = nuclei.size / speaking_s if nuclei.size and speaking_s > 0 else nan

    return ProsodyFeatures(
        duration_s=duration_s,
        f0_mean_st=f0_mean,
        f0_range_st=f0_range,
        f0_std_st=f0_std,
        voiced_ratio=voiced_ratio,
        loudness_dbfs=loudness_dbfs,
        loudness_proxy=loudness_proxy,
        alpha_ratio_db=alpha,
        hammarberg_db=hammarberg,
        rate_per_s=rate_per_s,
        pause_ratio=pause_ratio,
        loudness_peaks_per_s=peaks_per_s,
        syllable_rate=syllable_rate,
        speaking_s=speaking_s,
    )


BLOCK_HOPS = 32  # hops analysed together: amortises per-call overhead, bounds one step's work
# A whole buffer (`frame_tracks`) has no step to bound: larger blocks cost 30% less CPU
# (numpy's per-call overhead and the transforms' set-up, paid once per block). The hops'
# values do not depend on the block size.
BATCH_BLOCK_HOPS = 128


class _TrackStore:
    """Per-hop descriptors in arrays that grow by doubling: no per-call lists to join."""

    def __init__(self, capacity: int = 512) -> None:
        self.size = 0
        self._cols = [np.empty(capacity) for _ in range(7)]
        self._voiced = np.zeros(capacity, dtype=bool)

    def append(self, voiced: np.ndarray[Any, np.dtype[np.bool_]], *cols: FloatArray) -> None:
        n = voiced.size
        end = self.size + n
        if end > self._voiced.size:
            capacity = max(end, 2 * self._voiced.size)
            self._cols = [np.resize(c, capacity) for c in self._cols]
            self._voiced = np.resize(self._voiced, capacity)
        for store, col in zip(self._cols, cols, strict=True):
            store[self.size : end] = col
        self._voiced[self.size : end] = voiced
        self.size = end

    def tracks(self) -> FrameTracks:
        level, f0, loudness, alpha, hammarberg, aperiodic, nucleus = (
            c[: self.size] for c in self._cols
        )
        voiced = self._voiced[: self.size]
        return FrameTracks(level, f0, voiced, loudness, alpha, hammarberg, aperiodic, nucleus)


class ProsodyStream:
    """Low-level descriptors computed as audio arrives, in fixed blocks of `block_hops` hops.

    Every hop is analysed from one frame of the pitch tracker's length centred on the hop;
    the spectral window and the hop's own samples are slices of it, so one buffer feeds all
    descriptors. `feed` only copies the chunk into a preallocated buffer until a whole block
    is waiting, then analyses it: one step costs a few hundred microseconds of CPU whatever
    the chunk size. With `max_blocks_per_feed` set, a feed analyses at most that many blocks
    and carries the rest to the next call (for callers on a latency-sensitive thread); by
    default it analyses every whole block. `finish()` analyses the last partial block and
    the lookahead tail (at most two blocks) and summarises the per-hop tracks already
    computed, so the end of a turn costs about a millisecond whatever the turn's length.
    """

    def __init__(
        self,
        rate: int = RATE,
        *,
        max_blocks_per_feed: int | None = None,
        block_hops: int = BLOCK_HOPS,
    ) -> None:
        if max_blocks_per_feed is not None and max_blocks_per_feed < 1:
            raise ValueError(f"max_blocks_per_feed must be >= 1, got {max_blocks_per_feed}")
        if block_hops < 1:
            raise ValueError(f"block_hops must be >= 1, got {block_hops}")
        self.rate = rate
        self.max_blocks_per_feed = max_blocks_per_feed
        self._block_hops = block_hops
        self._yin = YinConfig(rate=rate, hop_ms=HOP_MS)
        self._spectral = _spectral(rate)
        self._hop = self._yin.hop
        self._frame_len = self._yin.frame_len
        # Frame i starts at i * hop in the buffer, which begins with `pad` zeros so that the
        # frame is centred on hop i; the spectral window and the hop sit inside it.
        pad = self._frame_len // 2 - self._hop // 2
        self._level_at = pad
        self._spec_at = pad - (self._spectral.frame_len // 2 - self._hop // 2)
        if self._spec_at < 0 or self._spec_at + self._spectral.frame_len > self._frame_len:
            raise AssertionError("the spectral window must lie inside the pitch frame")
        self._buf = np.zeros(max(4 * self.rate // 10, 2 * self._block_span()))
        self._start = 0  # buffer index of the next frame to analyse
        self._end = pad  # buffer index after the last sample fed
        self._store = _TrackStore()
        self._n_samples = 0
        self._finished = False

    def _block_span(self) -> int:
        return (self._block_hops - 1) * self._hop + self._frame_len

    @property
    def duration_s(self) -> float:
        return self._n_samples / self.rate

    @property
    def pending_hops(self) -> int:
        """Hops fed whose frame is complete but not yet analysed."""
        available = self._end - self._start - self._frame_len
        return 0 if available < 0 else 1 + available // self._hop

    def feed(self, chunk: np.ndarray[Any, Any]) -> None:
        if self._finished:
            raise RuntimeError("this ProsodyStream is finished; start a new one per utterance")
        samples = to_float(chunk).reshape(-1)
        self._n_samples += samples.size
        self._append(samples)
        self._analyse(self.max_blocks_per_feed)

    def _append(self, samples: FloatArray) -> None:
        need = self._end + samples.size
        if need > self._buf.size:
            # Move the unanalysed tail to the front; grow only when a caller fell behind.
            keep = self._end - self._start
            if keep + samples.size > self._buf.size:
                grown = np.zeros(max(2 * self._buf.size, keep + samples.size))
                grown[:keep] = self._buf[self._start : self._end]
                self._buf = grown
            else:
                self._buf[:keep] = self._buf[self._start : self._end]
            self._start, self._end = 0, keep
        self._buf[self._end : self._end + samples.size] = samples
        self._end += samples.size

    def _analyse(self, max_blocks: int | None, limit: int | None = None) -> None:
        """Analyse whole blocks (or, with `limit`, up to `limit` hops in blocks)."""
        blocks = 0
        while max_blocks is None or blocks < max_blocks:
            ready = self.pending_hops if limit is None else min(self.pending_hops, limit)
            count = min(self._block_hops, ready)
            if count == 0 or (limit is None and count < self._block_hops):
                return
            self._analyse_block(count)
            if limit is not None:
                limit -= count
            blocks += 1

    def _analyse_block(self, count: int) -> None:
        hop, length = self._hop, self._frame_len
        span = self._buf[self._start : self._start + (count - 1) * hop + length]
        frames = np.lib.stride_tricks.sliding_window_view(span, length)[::hop]
        energy = window_energies(span, count, self._yin)
        f0, voiced, aperiodicity = yin_analysis(np.ascontiguousarray(frames), self._yin, energy)
        own = frames[:, self._level_at : self._level_at + hop]
        power = np.einsum("ij,ij->i", own, own) / hop
        level = 10.0 * np.log10(np.maximum(power, 10.0 ** (FLOOR_DBFS / 10.0)))
        spec = frames[:, self._spec_at : self._spec_at + self._spectral.frame_len]
        loudness, alpha, hammarberg, nucleus = self._spectral.analyse(spec)
        self._store.append(voiced, level, f0, loudness, alpha, hammarberg, aperiodicity, nucleus)
        self._start += count * hop

    def finish_tracks(self) -> FrameTracks:
        """Analyse what is left (zeros after the end as lookahead) and return every hop."""
        if not self._finished:
            self._finished = True
            n_hops = self._n_samples // self._hop
            self._append(np.zeros(self._frame_len))
            self._analyse(None, limit=n_hops - self._store.size)
        tracks = self._store.tracks()
        if len(tracks) != self._n_samples // self._hop:  # a framing bug, not bad input
            raise AssertionError(f"{len(tracks)} hops analysed of {self._n_samples // self._hop}")
        return tracks

    def finish(self) -> ProsodyFeatures:
        return summarise(self.finish_tracks(), self.duration_s)


__all__ = [
    "FrameTracks",
    "ProsodyFeatures",
    "ProsodyStream",
    "extract_features",
    "frame_tracks",
    "summarise",
    "syllable_nuclei",
    "yin",
]
