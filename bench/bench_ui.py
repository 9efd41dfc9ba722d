"""First window: time from process start to the main window shown (a fresh process per
run, so imports are paid each time), with the process's CPU time beside the wall clock.

Idle CPU: the real app (`python -m emodesk`, offline demo, connected to its in-process
emulator, the audio engine on a private PulseAudio server) left alone with its window
open; CPU time of the process over a measured stretch, as % of one core, a fresh app per
run.

Each figure is printed as the median and range over its runs with the run count, and
PASS/FAIL against design.md's budgets (first window < 1 s, idle CPU < 5% of one core):
PASS when the median is within budget, and whether every run was. The load average is
printed beside them: on a shared machine other processes stretch the wall clock."""

from __future__ import annotations

import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7
IDLE_RUNS = 3
FIRST_WINDOW_BUDGET_S = 1.0
IDLE_BUDGET_PERCENT = 5.0
IDLE_SETTLE_S = 8.0  # start-up, backend import, connection, the scope scrolling flat
IDLE_MEASURE_S = 10.0


def first_window_s() -> tuple[float, float]:
    """(wall s from process start until the app says its first window is shown
    (EMODESK_EXIT_AFTER_SHOW: after show() and one turn of the event loop), CPU s of the
    whole run, its quick exit included)."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as err:
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
            "EMODESK_EXIT_AFTER_SHOW": "1",
            "EMODESK_SETTINGS_FILE": os.path.join(tmp, "settings.ini"),
            "XDG_STATE_HOME": tmp,
            "XDG_DATA_HOME": tmp,
        }
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        app = subprocess.Popen(
            [sys.executable, "-m", "emodesk"], env=env, stdout=subprocess.PIPE, stderr=err,
            text=True,
        )  # fmt: skip
        assert app.stdout is not None
        shown = None
        for line in app.stdout:
            if shown is None and line.strip() == "first-window-shown":
                shown = time.perf_counter() - start
        app.wait(60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        err.seek(0)
        if shown is None or app.returncode != 0:
            raise RuntimeError(f"the window did not report being shown: {err.read()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return shown, cpu


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


def _verdict(values: list[float], budget: float) -> str:
    median_ok = statistics.median(values) < budget
    every = "every run within it" if max(values) < budget else "not every run within it"
    return f"{'PASS' if median_ok else 'FAIL'} (median), {every}"


def main() -> None:
    load = os.getloadavg()[0]
    idle = [idle_cpu_percent() for _ in range(IDLE_RUNS)]
    print(
        f"idle CPU with the window open (offline demo, connected, {IDLE_MEASURE_S:.0f} s per "
        f"run), {len(idle)} runs: median {statistics.median(idle):.1f}%, range "
        f"{min(idle):.1f}-{max(idle):.1f}% of one core; budget < {IDLE_BUDGET_PERCENT:.0f}%: "
        f"{_verdict(idle, IDLE_BUDGET_PERCENT)}"
    )
    runs = [first_window_s() for _ in range(RUNS)]
    wall = [w * 1000 for w, _ in runs]
    cpu = [c * 1000 for _, c in runs]
    budget_ms = FIRST_WINDOW_BUDGET_S * 1000
    print(
        f"first window shown (process start -> the app says shown), {len(runs)} runs: wall "
        f"median {statistics.median(wall):.0f} ms, range {min(wall):.0f}-{max(wall):.0f} ms; "
        f"budget < {budget_ms:.0f} ms: {_verdict(wall, budget_ms)}; CPU time median "
        f"{statistics.median(cpu):.0f} ms, range {min(cpu):.0f}-{max(cpu):.0f} ms (the whole run, "
        "exit included)"
    )
    print(f"load average (1 min) at the start / end: {load:.1f} / {os.getloadavg()[0]:.1f}")
