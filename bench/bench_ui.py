"""First window: time from process start to the main window shown (a fresh process per
run, so imports are paid each time), median and max over several runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = 7


def first_window_s() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
            "EMODESK_EXIT_AFTER_SHOW": "1",
            "EMODESK_SETTINGS_FILE": os.path.join(tmp, "settings.ini"),
            "XDG_STATE_HOME": tmp,
            "XDG_DATA_HOME": tmp,
        }
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "emodesk"], env=env, capture_output=True, text=True,
            timeout=60, check=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
    if "first-window-shown" not in out.stdout:
        raise RuntimeError(f"the window did not report being shown: {out.stderr[-500:]}")
    return elapsed


def main() -> None:
    times = [first_window_s() for _ in range(RUNS)]
    print(
        f"first window shown (process start -> shown, includes exit), {RUNS} runs: "
        f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
        f"(budget 1000 ms)"
    )
