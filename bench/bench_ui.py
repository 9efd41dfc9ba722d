"""First window: time from process start to the main window shown (a fresh process per
run, so imports are paid each time), median and max over several runs.

Idle CPU: the real app (`python -m emodesk`, offline demo, connected to its in-process
emulator, the audio engine on a private PulseAudio server) left alone with its window
open; CPU time of the process over a measured stretch, as % of one core."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7
IDLE_SETTLE_S = 8.0  # start-up, backend import, connection, the scope scrolling flat
IDLE_MEASURE_S = 10.0


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


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def idle_cpu_percent() -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.pulse import PulseStack

    with PulseStack() as pulse, tempfile.TemporaryDirectory() as tmp:
        env = {
            **pulse.env(),
            "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
            "EMODESK_SETTINGS_FILE": os.path.join(tmp, "settings.ini"),
            "XDG_STATE_HOME": tmp,
            "XDG_DATA_HOME": tmp,
        }
        env.pop("GEMINI_API_KEY", None)
        app = subprocess.Popen(
            [sys.executable, "-m", "emodesk"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(IDLE_SETTLE_S)
            if app.poll() is not None:
                raise RuntimeError(f"the app exited early with {app.returncode}")
            cpu0, t0 = _cpu_seconds(app.pid), time.perf_counter()
            time.sleep(IDLE_MEASURE_S)
            cpu1, t1 = _cpu_seconds(app.pid), time.perf_counter()
        finally:
            app.send_signal(signal.SIGTERM)  # closes the window: the normal shutdown
            try:
                app.wait(timeout=20)
            except subprocess.TimeoutExpired:
                app.kill()
                raise RuntimeError("the app did not exit within 20 s of SIGTERM") from None
        return (cpu1 - cpu0) / (t1 - t0) * 100


def main() -> None:
    idle = idle_cpu_percent()
    print(
        f"idle CPU with the window open (offline demo, connected, {IDLE_MEASURE_S:.0f} s): "
        f"{idle:.1f}% of one core (budget 5%)"
    )
    times = [first_window_s() for _ in range(RUNS)]
    print(
        f"first window shown (process start -> shown, includes exit), {RUNS} runs: "
        f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
        f"(budget 1000 ms)"
    )
