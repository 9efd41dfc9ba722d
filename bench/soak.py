"""The soak: the desktop app for an hour with real audio, against the emulator.

The real window (offscreen unless a display is set) and its backend (`emodesk.app`:
store, PyAudio engine, controller) in this process, on a private PulseAudio null-sink
stack, consent on; the emulator in a process of its own (`--endpoint` on loopback, as
`emodesk emulator` would be), so the memory and CPU figures are the app's alone, its
faults driven through its stdin. A spoken turn (espeak-ng speech played
into the microphone sink) every 10-20 s, push-to-talk (the controller's intents, as the
window's button calls them; the key is let go once the speech has ended at the
microphone) and hands-free alternating; the emulator says `goAway` at a turn every 10
minutes and its connections are dropped every 15.

Per turn: answered (closed completed) or lost (failed, interrupted, or not closed
within 60 s). Voice to voice (v2v), the app and the link without the user's own
timing: push-to-talk, key up to the first reply sound at the speaker (`spk.monitor`,
read by parec); hands-free, the end of the user's speech heard at the microphone
(`mic.monitor`, parec on the same clock) to that first sound, less the server's
end-of-speech wait (the `vad_silence_ms` setting). RSS from /proc/self/status, its
start after warm-up (the first answered turn and a tenth of the run, at most 5
minutes: imports, first connections, caches); growth per hour is (end - start) over
the time between. CPU: this process's user + system time over the run, as % of one
core (the emulator's process not included). Each turn's time is split as `bench_latency`
splits it (`bench.reply_path`: to the server, the emulator's own work and the emotion
call it waits for, the reply's way to the speaker), with the machine's load and the
host's steal over the turn; voice to voice less the emulator's own time is the app's
and the link's alone.

`python -m bench.soak [--minutes N] [--out soak.json]` (`make soak ARGS="--minutes N"`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from bench.figures import MachineLoad, StolenTime
from bench.reply_path import SHARES, ReplyTrace, split_turn

LINES = (
    ("What is the weather like in Lisbon tomorrow morning?", 50, 160),
    ("I would like to book a table for two at eight.", 35, 140),
    ("Can you remind me to call my sister this evening?", 65, 175),
    ("Tell me something cheerful, it has been a long day.", 45, 150),
)
TURN_LIMIT_S = 60.0
LOUD = 300  # peak of a 5 ms block that counts as sound (null sinks are exact zeros)


def rss_mb(pid: int | str = "self") -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return float("nan")  # the process is gone
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class Monitor:
    """parec on a monitor source in a thread: the times at which 5 ms blocks with sound
    were read (each block's end, as near as the pipe tells), kept for two minutes."""

    def __init__(self, pulse: Any, device: str, rate: int) -> None:
        self.proc = pulse.start_recording(device, rate)
        self.block = rate // 200
        self.loud: deque[float] = deque()
        self._thread = threading.Thread(target=self._read, daemon=True, name=f"soak-{device}")
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        size = self.block * 2
        while chunk := self.proc.stdout.read(size):
            now = time.monotonic()
            if np.abs(np.frombuffer(chunk, np.int16)).max(initial=0) > LOUD:
                self.loud.append(now)
            while self.loud and self.loud[0] < now - 120:
                self.loud.popleft()

    def last_sound(self, after: float, before: float) -> float | None:
        times = [t for t in list(self.loud) if after <= t <= before]
        return times[-1] if times else None

    def first_sound(self, after: float, before: float) -> float | None:
        times = [t for t in list(self.loud) if after <= t <= before]
        return times[0] if times else None

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._thread.join(5)


class EmulatorProcess:
    """The emulator in a child process (`python -m bench.soak --emulator`); its faults
    on demand through its stdin: `arm KIND`, `drop`, `connections`, `marks` (answered on
    stdout)."""

    def __init__(self, command: list[str] | None = None) -> None:
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "bench.soak", "--emulator"],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 3 or line[0] != "URL":
            raise RuntimeError(f"the emulator did not start: {line}")
        self.url, self.ca_file = line[1], line[2]

    def say(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def arm(self, kind: str) -> None:
        self.say(f"arm {kind}")

    def drop_open_connections(self) -> None:
        self.say("drop")

    def connections(self) -> int:
        return int(self.say("connections"))

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def run_emulator() -> None:
    """The child: an emulator at real-time pacing, its turns timed (`bench.reply_path`);
    commands from stdin, one per line, each answered with one line."""
    from bench.reply_path import time_emulator
    from emodesk.live.emulator.server import EmulatorServer

    marks = time_emulator()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = EmulatorServer(speed=1.0)
        await server.start()
        print(f"URL {server.url} {server.ca_file}", flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command, *rest = line.split()
            if command == "arm":
                server.arm(rest[0])
                print("ok", flush=True)
            elif command == "drop":
                print(server.drop_open_connections(), flush=True)
            elif command == "connections":
                print(len(server.connections), flush=True)
            elif command == "marks":
                print(json.dumps(marks.as_json()), flush=True)
        await server.stop()

    asyncio.run(serve())


def speech_ended(mic: Monitor, t0: float) -> bool:
    """Speech has been heard since t0 and none for the last 300 ms (as a user lets go
    of the key when done speaking; shorter pauses are inside a sentence)."""
    last = mic.last_sound(t0, time.monotonic())
    return last is not None and time.monotonic() - last >= 0.3


def _every(samples: list[tuple[float, float]], period_s: float) -> list[float]:
    """The first of (seconds, value) samples at or after each multiple of period_s."""
    picked: list[float] = []
    for t, value in samples:
        if t >= len(picked) * period_s:
            picked.append(round(value, 1))
    return picked


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def _shares(results: list[dict[str, Any]], q: float) -> dict[str, float | None]:
    return {
        name: _pct([r["shares_ms"][name] for r in results if name in r.get("shares_ms", {})], q)
        for name in SHARES
    }


async def soak(args: argparse.Namespace, pulse: Any, tmp: Path) -> dict[str, Any]:
    from emodesk.app import Backend, BackendOptions, window_options
    from emodesk.conversation.api import (
        ConversationState,
        StateChanged,
        TurnClosed,
        TurnOutcome,
    )
    from emodesk.core.consent import ConsentRecord
    from emodesk.ui.main_window import MainWindow
    from emodesk.ui.settings_store import SettingsStore, open_qsettings
    from tests.support.pulse import espeak_wav

    S = ConversationState
    wavs = [
        espeak_wav(tmp / f"line{i}.wav", text, pitch=pitch, speed=speed)
        for i, (text, pitch, speed) in enumerate(LINES)
    ]
    store = SettingsStore(open_qsettings(str(tmp / "settings.ini")))
    loaded, _ = store.load()
    settings = dataclasses.replace(loaded, consent=ConsentRecord.grant())
    if args.frame_ms is not None:
        settings = dataclasses.replace(settings, frame_ms=args.frame_ms)
    window = MainWindow(window_options(), store, settings)
    window.show()
    emulator = EmulatorProcess()
    backend = Backend(
        window,
        BackendOptions(
            endpoint=emulator.url, ca_file=emulator.ca_file, history_path=str(tmp / "h.db")
        ),
    )
    await backend.start()
    trace = ReplyTrace()
    mic = Monitor(pulse, "mic.monitor", 16000)
    spk = Monitor(pulse, "spk.monitor", 24000)

    closed: list[tuple[float, TurnClosed]] = []
    states: list[StateChanged] = []
    subscribed: set[int] = set()

    def watch() -> Any:
        controller = backend.controller
        if id(controller) not in subscribed:
            subscribed.add(id(controller))

            def on_event(event: Any) -> None:
                if isinstance(event, TurnClosed):
                    closed.append((time.monotonic(), event))
                elif isinstance(event, StateChanged):
                    states.append(event)

            controller.subscribe(on_event)
        return controller

    async def until(predicate: Any, limit_s: float) -> bool:
        deadline = time.monotonic() + limit_s
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    controller = watch()
    if not await controller.connect():
        raise RuntimeError("the app did not connect to its emulator")
    rng = random.Random(15)
    engines: dict[int, Any] = {}
    results: list[dict[str, Any]] = []
    rss_samples: list[tuple[float, float]] = []
    rss_start: tuple[float, float] | None = None
    goaways = drops = switches = 0
    t_begin = time.monotonic()
    cpu_begin = cpu_s()
    steal = StolenTime()
    next_goaway = args.goaway_every_s
    next_drop = args.drop_every_s
    next_turn = t_begin
    deadline = t_begin + args.minutes * 60
    i = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(max(0.0, next_turn - time.monotonic()))
        next_turn = time.monotonic() + rng.uniform(10, 20)
        elapsed = time.monotonic() - t_begin
        controller = watch()
        engines[id(backend.audio)] = backend.audio
        backend.audio.observer = trace
        machine = MachineLoad()
        if elapsed >= next_drop:
            next_drop += args.drop_every_s
            drops += 1
            emulator.drop_open_connections()
            await until(lambda c=controller: c.state is S.READY, 30)
        hands_free = i % 2 == 1
        if controller.settings.hands_free != hands_free:
            seen = len(states)
            switches += 1
            controller.set_hands_free(hands_free)
            await until(lambda s=seen: any("applied" in e.detail for e in states[s:]), 30)
        await until(lambda c=controller: c.state is S.READY, 30)
        if elapsed >= next_goaway:
            next_goaway += args.goaway_every_s
            goaways += 1
            emulator.arm("goaway")  # said at this turn's start, the link closed 1 s later
        wav = wavs[i % len(wavs)]
        n_closed = len(closed)
        t0 = time.monotonic()
        if not hands_free:
            controller.push_to_talk_down()
        player = pulse.play_into_mic(wav, wait=False)
        t_up: float | None = None
        while player.poll() is None:
            if not hands_free and t_up is None and speech_ended(mic, t0):
                controller.push_to_talk_up()
                t_up = time.monotonic()
            await asyncio.sleep(0.01)
        if not hands_free and t_up is None:
            controller.push_to_talk_up()
            t_up = time.monotonic()
        t_spoken = time.monotonic()
        got = await until(lambda n=n_closed: len(closed) > n, TURN_LIMIT_S)
        result: dict[str, Any] = {"turn": i + 1, "mode": "hands-free" if hands_free else "ptt"}
        if got:
            t_closed, event = closed[n_closed]
            result.update(outcome=str(event.outcome), reason=event.reason)
            end = t_up if t_up is not None else mic.last_sound(t0, t_spoken + 0.3)
            onset = spk.first_sound(end, t_closed + 0.5) if end is not None else None
            if event.outcome is TurnOutcome.COMPLETED and end is not None and onset is not None:
                wait_s = controller.settings.vad_silence_ms / 1000 if hands_free else 0.0
                result["v2v_ms"] = round((onset - end - wait_s) * 1000, 1)
                marks = json.loads(emulator.say("marks"))
                split = split_turn(marks, trace, end, onset, wait_s)
                result["shares_ms"] = {k: round(v * 1000, 1) for k, v in split.items()}
                if "server" in split:  # the emulator's own time out; its call's wait kept
                    own = split["server"] - split.get("tool", 0.0)
                    result["v2v_less_server_ms"] = round(result["v2v_ms"] - own * 1000, 1)
        else:
            result.update(outcome="not closed", reason=f"no TurnClosed within {TURN_LIMIT_S} s")
        result["machine"] = machine.percent()
        results.append(result)
        now = time.monotonic()
        rss_samples.append((now - t_begin, rss_mb()))
        result["rss_mb"] = round(rss_samples[-1][1], 1)
        result["emulator_rss_mb"] = round(rss_mb(emulator.proc.pid), 1)
        warm = now - t_begin >= min(300.0, args.minutes * 6)
        if (
            rss_start is None
            and warm
            and results
            and any(r["outcome"] == "completed" for r in results)
        ):
            rss_start = (now, rss_mb())
        print(f"[{(now - t_begin) / 60:5.1f} min] {json.dumps(result)}", flush=True)
        await until(lambda c=controller: c.state is S.READY, 30)  # the reply played out
        i += 1
    t_end = time.monotonic()
    cpu = cpu_s() - cpu_begin
    stolen = steal.percent()
    rss_end = rss_mb()
    underruns = sum(e.counters.underruns for e in engines.values())
    mic.stop()
    spk.stop()
    await backend.stop()
    window.close()
    connections = emulator.connections()
    emulator.stop()

    answered = sum(r["outcome"] == "completed" for r in results)
    v2v = [r["v2v_ms"] for r in results if "v2v_ms" in r]
    less_server = [r["v2v_less_server_ms"] for r in results if "v2v_less_server_ms" in r]
    by_mode = {
        mode: [r["v2v_ms"] for r in results if "v2v_ms" in r and r["mode"] == mode]
        for mode in ("ptt", "hands-free")
    }
    start_t, start_mb = rss_start if rss_start is not None else (t_begin, rss_samples[0][1])
    hours = max((t_end - start_t) / 3600, 1e-9)
    return {
        "minutes": round((t_end - t_begin) / 60, 2),
        "turns": len(results),
        "answered": answered,
        "lost": len(results) - answered,
        # New connections after a loss (goAway, drop): all the emulator saw beyond the
        # first, less one per hands-free switch (a setup change is a new connection).
        "reconnects": connections - 1 - switches,
        "rss_start_mb": round(start_mb, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_mb_per_hour": round((rss_end - start_mb) / hours, 1),
        "cpu_percent": round(100 * cpu / (t_end - t_begin), 1),
        "v2v_p50_ms": _pct(v2v, 50),
        "v2v_p99_ms": _pct(v2v, 99),
        "underruns": underruns,
        # Beyond the fields: what the figures above rest on.
        "frame_ms": settings.frame_ms,
        "cpu_steal_percent": stolen,  # of the machine's busy time, taken by a VM's host
        "v2v_ptt_p50_ms": _pct(by_mode["ptt"], 50),
        "v2v_ptt_p99_ms": _pct(by_mode["ptt"], 99),
        "v2v_hands_free_p50_ms": _pct(by_mode["hands-free"], 50),
        "v2v_hands_free_p99_ms": _pct(by_mode["hands-free"], 99),
        "v2v_measured": len(v2v),
        # Where the time went (`bench.reply_path.split_turn`), per share over the turns.
        # Voice to voice without the emulator's own time (its share less the emotion call's
        # round trip through the app): the app and the link alone.
        "v2v_less_server_p50_ms": _pct(less_server, 50),
        "v2v_less_server_p99_ms": _pct(less_server, 99),
        "shares_p50_ms": _shares(results, 50),
        "shares_p99_ms": _shares(results, 99),
        "goaways": goaways,
        "drops": drops,
        "hands_free_switches": switches,
        "reconnecting_states": sum(e.state is S.RECONNECTING for e in states),
        "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_mb_every_5_min": _every(rss_samples, 300.0),
        # Whether voice to voice drifts as the session grows (per turn order, not time).
        "v2v_p50_ms_every_40_turns": [_pct(v2v[i : i + 40], 50) for i in range(0, len(v2v), 40)],
        "lost_turns": [r for r in results if r["outcome"] != "completed"],
    }


def verdict(report: dict[str, Any]) -> list[str]:
    p50, p99 = report["v2v_p50_ms"], report["v2v_p99_ms"]
    checks = [
        ("0 lost", report["lost"] == 0),
        ("RSS growth < 20 MB/hour", report["rss_growth_mb_per_hour"] < 20),
        ("v2v p99 within 2x p50", p50 is not None and p99 is not None and p99 <= 2 * p50),
    ]
    return [f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in checks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--out", default="soak.json")
    parser.add_argument("--goaway-every-s", type=float, default=600.0)
    parser.add_argument("--drop-every-s", type=float, default=900.0)
    parser.add_argument("--frame-ms", type=int, help="the app's frame length setting")
    parser.add_argument("--emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.emulator:
        run_emulator()
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from emodesk.app.heap import limit_malloc_arenas
    from tests.support.pulse import PulseStack, missing_binaries

    limit_malloc_arenas()  # as `emodesk` (app.run) does before its first thread

    if missing_binaries():
        print(f"soak: PulseAudio binaries missing: {missing_binaries()}", file=sys.stderr)
        return 2
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    with PulseStack() as pulse, tempfile.TemporaryDirectory(prefix="emodesk-soak-") as tmp:
        os.environ["XDG_STATE_HOME"] = os.environ["XDG_DATA_HOME"] = tmp  # log, history
        os.environ.pop("GEMINI_API_KEY", None)  # a loopback endpoint takes any key
        app = QApplication.instance() or QApplication(sys.argv[:1])
        app.setQuitOnLastWindowClosed(False)
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            report = loop.run_until_complete(soak(args, pulse, Path(tmp)))
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    for line in verdict(report):
        print(line)
    p50, p99 = report["v2v_less_server_p50_ms"], report["v2v_less_server_p99_ms"]
    if p50 and p99:
        print(f"      (less the emulator's own time: p50 {p50} ms, p99 {p99} ms, {p99 / p50:.2f}x)")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
