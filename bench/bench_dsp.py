"""Acoustic estimator speed on one core: real-time factor on 10 minutes of speech, the
longest single streaming call (wall and thread CPU time), the end-of-turn cost and how long
another thread waits for the GIL while turns are analysed; beside openSMILE eGeMAPSv02
functionals and librosa's pyin on the same audio when those can be installed.

`python -m bench dsp` also creates .venv-bench beside .venv (pip install opensmile
librosa) and runs them there, pinned to the same core; `EMODESK_BENCH_COMPARE=0` skips
them (what cannot be installed is reported and skipped). Budgets (issue 5), each printed
as PASS or FAIL: at least 100x real time, faster than openSMILE, no single call over 5 ms.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RATE = 16000
MINUTES = 10
CHUNK_MS = 20
CORE = 0
BENCH_VENV = Path(__file__).resolve().parent.parent / ".venv-bench"

# Run in .venv-bench; prints "<wall s> <cpu s> <version>".
_COMPARE = r"""
import sys, time
path, what = sys.argv[1], sys.argv[2]
if what == "opensmile":
    import opensmile
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    run = lambda: smile.process_file(path)
    version = opensmile.__version__
else:
    import librosa
    y, sr = librosa.load(path, sr=16000)
    librosa.pyin(y[:sr], fmin=60, fmax=500, sr=sr)  # numba compiles on the first call
    run = lambda: librosa.pyin(y, fmin=60, fmax=500, sr=sr)
    version = librosa.__version__
w, c = time.perf_counter(), time.process_time()
run()
print(time.perf_counter() - w, time.process_time() - c, version)
"""


def _speech(seconds: float) -> np.ndarray:
    from tests.support.speech import AGITATED, CALM, NORMAL, SENTENCES, speech_16k, with_silence

    parts = [speech_16k(s, p, v) for s in SENTENCES for p in (CALM, NORMAL, AGITATED)
             for v in ("en", "en-us", "en+f3")]  # fmt: skip
    one_round = with_silence(*parts, gap_s=0.8)
    reps = int(np.ceil(seconds * RATE / one_round.size))
    return np.tile(one_round, reps)[: int(seconds * RATE)]


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and this thread's CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.thread_time()
    work()
    return time.perf_counter() - wall, time.thread_time() - cpu


def _row(what: str, duration: float, wall: float, cpu: float | None, note: str = "") -> None:
    cpu_s = f"{cpu:8.2f}" if cpu is not None else f"{'-':>8}"
    print(f"{what:<34} {wall:8.2f} {cpu_s} {duration / wall:10.1f}x  {note}")


def _compare(wav: Path, duration: float) -> list[tuple[str, float, float, str]]:
    """(name, wall s, cpu s, version) of openSMILE and pyin; reasons printed for failures."""
    if os.environ.get("EMODESK_BENCH_COMPARE") == "0":
        print("(openSMILE / librosa pyin: skipped, EMODESK_BENCH_COMPARE=0)")
        return []
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if made.returncode != 0:
            print(f"openSMILE / librosa: could not create {BENCH_VENV}: {made.stderr.strip()}")
            return []
    (BENCH_VENV / ".gitignore").write_text("*\n")  # a private venv, never committed
    results = []
    for what, package in (("opensmile", "opensmile"), ("librosa", "librosa")):
        have = subprocess.run([str(python), "-c", f"import {package}"],
                              capture_output=True, check=False)  # fmt: skip
        if have.returncode != 0:
            pip = [str(python), "-m", "pip", "install", "-q", package]
            got = subprocess.run(pip, capture_output=True, text=True, timeout=900, check=False)
            if got.returncode != 0:
                print(f"{what}: pip install failed: {got.stderr.strip().splitlines()[-3:]}")
                continue
        run = subprocess.run(
            ["taskset", "-c", str(CORE), str(python), "-c", _COMPARE, str(wav), what],
            capture_output=True, text=True, timeout=3600, check=False,
            env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                 "NUMBA_NUM_THREADS": "1"},
        )  # fmt: skip
        if run.returncode != 0:
            print(f"{what}: failed to run: {run.stderr.strip().splitlines()[-3:]}")
            continue
        wall, cpu, version = run.stdout.split()[-3:]
        results.append((what, float(wall), float(cpu), version))
    return results


def _gil_wait(work: Callable[[], object], period_s: float = 0.001) -> np.ndarray:
    """Lateness (ms) of each wake-up of a thread that sleeps `period_s` at a time while `work`
    runs in another thread: how long the work kept a waiting thread (such as the audio
    thread) from the GIL. The switch interval is lowered to 0.5 ms so CPython's own 5 ms
    default does not hide a long C call."""
    done = threading.Event()
    lateness: list[float] = []

    def heartbeat() -> None:
        while not done.is_set():
            due = time.perf_counter() + period_s
            time.sleep(period_s)
            lateness.append(time.perf_counter() - due)

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    beat = threading.Thread(target=heartbeat)
    worker = threading.Thread(target=work)
    try:
        beat.start()
        worker.start()
        worker.join()
    finally:
        done.set()
        beat.join(timeout=5.0)
        sys.setswitchinterval(old)
    return np.array(lateness or [0.0]) * 1e3


def _verdict(budget: str, met: bool, figure: str) -> None:
    print(f"budget: {budget}: {'PASS' if met else 'FAIL'} ({figure})")


def main() -> None:
    from emodesk.commands.analyze import MAX_READING_S
    from emodesk.dsp.estimator import AcousticEstimator
    from emodesk.dsp.pitch import yin
    from emodesk.dsp.prosody import ProsodyStream, extract_features
    from emodesk.dsp.vad import segment_utterances
    from emodesk.dsp.wav import write_wav

    saved_affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CORE})  # one core for every thread (BLAS included)
    try:
        pcm = _speech(MINUTES * 60)
        duration = pcm.size / RATE
        print(f"audio: {duration:.0f} s of espeak-ng speech (3 voices x 3 styles), {RATE} Hz, "
              f"pinned to core {CORE}")  # fmt: skip
        print(f"{'what':<34} {'wall s':>8} {'cpu s':>8} {'real time':>11}")

        def pipeline() -> int:
            ranges = segment_utterances(pcm, RATE, max_utterance_s=MAX_READING_S)
            estimator = AcousticEstimator()
            for turn, (start, end) in enumerate(ranges, start=1):
                estimator.estimate(pcm[start:end], RATE, turn=turn, t_start_s=0.0, t_end_s=1.0)
            return len(ranges)

        ranges = segment_utterances(pcm, RATE, max_utterance_s=MAX_READING_S)
        wall, cpu = _timed(pipeline)
        _row("EmoDesk VAD+features+estimate", duration, wall, cpu, f"{len(ranges)} utterances")
        ours_wall = wall
        wall, cpu = _timed(lambda: extract_features(pcm))
        _row("EmoDesk features, one 10 min call", duration, wall, cpu)
        wall, cpu = _timed(lambda: yin(pcm, RATE))
        _row("EmoDesk YIN F0 only", duration, wall, cpu)

        opensmile_wall: float | None = None
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            write_wav(wav, pcm, RATE)
            for what, wall, cpu, version in _compare(wav, duration):
                name = {"opensmile": f"openSMILE {version} eGeMAPSv02 func.",
                        "librosa": f"librosa {version} pyin F0 only"}[what]  # fmt: skip
                note = f"EmoDesk {wall / ours_wall:.1f}x faster" if what == "opensmile" else ""
                _row(name, duration, wall, cpu, note)
                if what == "opensmile":
                    opensmile_wall = wall
        _verdict("at least 100x real time", duration / ours_wall >= 100,
                 f"{duration / ours_wall:.0f}x")  # fmt: skip
        if opensmile_wall is None:
            print("budget: faster than openSMILE: not measured (see above)")
        else:
            _verdict("faster than openSMILE", ours_wall < opensmile_wall,
                     f"{opensmile_wall / ours_wall:.1f}x")  # fmt: skip

        # Streaming as a live turn would: 20 ms chunks, at most one block of work per call.
        chunk = RATE * CHUNK_MS // 1000
        feed_wall: list[float] = []
        feed_cpu: list[float] = []
        end_wall: list[float] = []
        end_cpu: list[float] = []
        estimator = AcousticEstimator()
        for start, end in ranges:
            stream = ProsodyStream(RATE, max_blocks_per_feed=1)
            for pos in range(start, end, chunk):
                piece = pcm[pos : min(pos + chunk, end)]
                w, c = _timed(lambda: stream.feed(piece))  # noqa: B023 - called at once
                feed_wall.append(w)
                feed_cpu.append(c)
            w, c = _timed(lambda: estimator.assess(stream.finish()))  # noqa: B023
            end_wall.append(w)
            end_cpu.append(c)
        fw, fc = np.array(feed_wall) * 1e3, np.array(feed_cpu) * 1e3
        ew, ec = np.array(end_wall) * 1e3, np.array(end_cpu) * 1e3
        print(f"\nstreaming, {CHUNK_MS} ms chunks, {fw.size} feed calls, {ew.size} turns "
              f"(ms; wall = perf_counter, cpu = thread_time; budget 5 ms)")  # fmt: skip
        print(f"{'':<22} {'median':>7} {'p99':>7} {'p99.9':>7} {'max':>7}")
        for name, ms in (("feed wall", fw), ("feed cpu", fc), ("end of turn wall", ew),
                         ("end of turn cpu", ec)):  # fmt: skip
            p = np.percentile(ms, [50, 99, 99.9])
            print(f"{name:<22} {p[0]:7.2f} {p[1]:7.2f} {p[2]:7.2f} {ms.max():7.2f}")
        print("(end of turn = finish the last block and the lookahead, summarise, estimate)")
        # CPU time: wall time also counts the scheduler giving the core to others.
        _verdict("no streaming call over 5 ms of CPU", fc.max() <= 5.0,
                 f"max {fc.max():.2f} ms cpu, {fw.max():.2f} ms wall")  # fmt: skip

        # Whole turns in a worker thread, as the controller runs them; a 1 ms heartbeat
        # thread stands in for the audio thread. A pure-Python busy loop is the floor that
        # CPython and the scheduler give on one core.
        turns = ranges[:40]

        def estimate_turns() -> None:
            for s, e in turns:
                AcousticEstimator().estimate(pcm[s:e], RATE, turn=1, t_start_s=0.0, t_end_s=1.0)

        def busy_loop() -> None:
            until = time.perf_counter() + 0.5
            while time.perf_counter() < until:
                pass

        print("\nGIL: a 1 ms heartbeat thread on the same core, how late it woke (ms) while")
        cases = (("a pure-Python busy loop ran", busy_loop),
                 (f"{len(turns)} whole turns were estimated", estimate_turns))  # fmt: skip
        for name, work in cases:
            late = _gil_wait(work)
            print(f"  {name:<34} p99 {np.percentile(late, 99):5.2f}  max {late.max():5.2f}")
    finally:
        os.sched_setaffinity(0, saved_affinity)
