"""Acoustic estimator speed: real-time factor on 10 minutes of speech, single core, and the
longest single streaming call; beside openSMILE eGeMAPS and librosa pyin when installable.

`python -m bench dsp` measures EmoDesk only. `EMODESK_BENCH_COMPARE=1` also creates
/work/main/.venv-bench (pip install opensmile librosa) and runs them there on the same audio.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 16000
MINUTES = 10
CHUNK_MS = 20
BENCH_VENV = Path(__file__).resolve().parent.parent / ".venv-bench"

_COMPARE = r"""
import sys, time
path, what = sys.argv[1], sys.argv[2]
if what == "opensmile":
    import opensmile
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    t = time.perf_counter(); smile.process_file(path); print(time.perf_counter() - t)
else:
    import librosa
    y, sr = librosa.load(path, sr=16000)
    t = time.perf_counter()
    librosa.pyin(y, fmin=60, fmax=500, sr=sr)
    print(time.perf_counter() - t)
"""


def _speech(seconds: float) -> np.ndarray:
    from tests.support.speech import AGITATED, CALM, NORMAL, SENTENCES, speech_16k, with_silence

    parts = [speech_16k(s, p, v) for s in SENTENCES for p in (CALM, NORMAL, AGITATED)
             for v in ("en", "en-us")]  # fmt: skip
    one_round = with_silence(*parts, gap_s=0.8)
    reps = int(np.ceil(seconds * RATE / one_round.size))
    return np.tile(one_round, reps)[: int(seconds * RATE)]


def _compare(pcm: np.ndarray, duration: float) -> None:
    python = BENCH_VENV / "bin" / "python"
    if os.environ.get("EMODESK_BENCH_COMPARE") != "1":
        print("openSMILE / librosa: set EMODESK_BENCH_COMPARE=1 to install them in .venv-bench")
        return
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=False)
        if made.returncode != 0:
            print("openSMILE / librosa: not installable here (no venv)")
            return
    subprocess.run([str(python), "-m", "pip", "install", "-q", "opensmile", "librosa"],
                   check=False, timeout=900)  # fmt: skip
    from emodesk.dsp.wav import write_wav

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        write_wav(wav, pcm, RATE)
        for what in ("opensmile", "librosa"):
            run = subprocess.run(
                [str(python), "-c", _COMPARE, str(wav), what],
                capture_output=True, text=True, timeout=3600, check=False,
                env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
            )  # fmt: skip
            if run.returncode != 0:
                print(f"{what}: not installable here ({run.stderr.strip().splitlines()[-1:]})")
                continue
            seconds = float(run.stdout.strip().splitlines()[-1])
            print(f"{what:>10}: {seconds:7.2f} s  real-time factor {duration / seconds:7.1f}x")


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from emodesk.dsp.estimator import AcousticEstimator
    from emodesk.dsp.pitch import yin
    from emodesk.dsp.prosody import ProsodyStream, extract_features
    from emodesk.dsp.vad import segment_utterances

    pcm = _speech(MINUTES * 60)
    duration = pcm.size / RATE
    print(f"audio: {duration:.0f} s of espeak-ng speech at {RATE} Hz")

    t = time.perf_counter()
    yin(pcm, RATE)
    pitch_s = time.perf_counter() - t
    print(f"{'YIN only':>10}: {pitch_s:7.2f} s  real-time factor {duration / pitch_s:7.1f}x")

    t = time.perf_counter()
    ranges = segment_utterances(pcm, RATE)
    estimator = AcousticEstimator()
    for turn, (start, end) in enumerate(ranges, start=1):
        estimator.estimate(pcm[start:end], RATE, turn=turn, t_start_s=0.0, t_end_s=1.0)
    total_s = time.perf_counter() - t
    print(f"{'EmoDesk':>10}: {total_s:7.2f} s  real-time factor {duration / total_s:7.1f}x "
          f"(VAD + eGeMAPS-style features + estimate, {len(ranges)} utterances)")  # fmt: skip

    t = time.perf_counter()
    extract_features(pcm)
    whole_s = time.perf_counter() - t
    print(f"{'one call':>10}: features of all {duration:.0f} s in one call: {whole_s:.2f} s")

    # Streaming: the per-chunk work while a turn is spoken, then the end-of-turn summary.
    chunk = RATE * CHUNK_MS // 1000
    feeds: list[float] = []
    longest_finish = 0.0
    for start, end in ranges:
        stream = ProsodyStream(RATE)
        for pos in range(start, end, chunk):
            t = time.perf_counter()
            stream.feed(pcm[pos : min(pos + chunk, end)])
            feeds.append(time.perf_counter() - t)
        t = time.perf_counter()
        estimator.assess(stream.finish())
        longest_finish = max(longest_finish, time.perf_counter() - t)
    ms = np.array(feeds) * 1e3
    print(
        f"streaming ({CHUNK_MS} ms chunks, {ms.size} calls): feed median {np.median(ms):.2f} ms, "
        f"p99.9 {np.percentile(ms, 99.9):.2f} ms, longest {ms.max():.2f} ms; "
        f"longest end-of-turn finish+estimate {longest_finish * 1e3:.2f} ms (budget 5 ms)"
    )
    _compare(pcm, duration)
