"""Peak memory of `emodesk converse` (a real process, the real SDK over TLS) against an
emulator that behaves, floods reply audio without end, or floods transcript text:
the limits of `emodesk.live.limits` keep it bounded. Median and range over runs."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

RUNS = 3
PACE = "10"
# The budget this figure is held to: a normal three-turn conversation peaks near 100 MB;
# without the limits a reply flood reached 6.7 GB in 60 s.
PEAK_BUDGET_MB = 250.0
CASES = (("well-behaved server", ""), ("reply-audio flood", "flood@1"),
         ("transcript flood", "textflood@1"))  # fmt: skip

_PARENT = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,"
    " stderr=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


def _three_utterances(path: Path) -> None:
    from bench.bench_conversation import _speech_like
    from emodesk.dsp.wav import write_wav

    gap = np.zeros(12800, np.int16)
    parts = [gap]
    for i in range(3):
        parts += [_speech_like(1.2, i), gap]
    write_wav(path, np.concatenate(parts), 16000)


async def _peak_mb(wav: Path, faults: str, workdir: Path) -> tuple[float, int]:
    from emodesk.live.emulator.server import EmulatorServer

    server = EmulatorServer(speed=float(PACE), faults=faults)
    await server.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _PARENT, sys.executable, "-m", "emodesk", "converse",
            "--audio-in", str(wav), "--consent", "yes", "--db", str(workdir / "h.db"),
            "--audio-out", str(workdir / "reply.wav"),
            "--endpoint", server.url, "--ca-file", server.ca_file,
            stdout=asyncio.subprocess.PIPE,
            env=dict(os.environ, EMODESK_CONVERSE_PACE=PACE),
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await server.stop()
    kb, code = out.decode().split()
    return int(kb) / 1024, int(code)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wav = workdir / "three.wav"
        _three_utterances(wav)
        print(f"converse peak RSS, 3 turns, flood at turn 1 ({RUNS} runs each, MB):")
        for label, faults in CASES:
            runs = [asyncio.run(_peak_mb(wav, faults, workdir)) for _ in range(RUNS)]
            peaks = [mb for mb, _ in runs]
            codes = sorted({code for _, code in runs})
            verdict = "PASS" if max(peaks) < PEAK_BUDGET_MB else "FAIL"
            print(
                f"  {label:<20} median {statistics.median(peaks):6.1f}  "
                f"range {min(peaks):.1f}-{max(peaks):.1f}  exit {codes}  "
                f"budget < {PEAK_BUDGET_MB:.0f}: {verdict}",
                flush=True,
            )


if __name__ == "__main__":
    main()
