"""Voice-to-voice latency through the real window and the real audio stack.

Each run is a fresh process: the desktop app's window (offscreen unless a display is
set) and backend (`emodesk.app`: PyAudio engine, controller) on a private PulseAudio
null-sink stack, consent off, against the emulator in a process of its own (as a remote
server is: its pacing is not held up by the app's loop). The emulator answers at once:
its reply synthesis is replaced by audio made ahead of time (a steady voiced signal
that starts and stops within 1 ms, so its first and last sound are measurable to the
5 ms block), and without consent there is no emotion call before the reply. The
user's speech is a steady voiced signal too (1 s, played into the microphone sink), so
where it ends is not in doubt.

Figures, all read by parec on the sinks' monitors on the process's monotonic clock:
- push-to-talk: the Space key released (a key event to the window) -> the first reply
  sound at the speaker. A key-up waits for an auto-repeat press only on an X server that
  refuses detectable auto-repeat (`emodesk.ui.ptt.REPEAT_GAP_MS`); offscreen, as on X11
  with it and on other platforms, it does not. The key event -> `push_to_talk_up` share
  is printed apart, and the same turn is also measured from `push_to_talk_up`.
- hands-free: the end of the speech at the microphone -> the first reply sound, less
  the server's end-of-speech wait (`vad_silence_ms`).
- barge-in (hands-free): the onset of speech at the microphone while a reply plays ->
  the reply silent at the speaker (its last sound); split at the emulator sending
  `interrupted` and at the app's first `flush()` after it.
The reply's way from the emulator's socket to the speaker is split by the engine's
observer: sent -> `play()` (read and parsed on the GUI thread), `play()` -> in the
playout buffer (the engine thread), -> its first block handed to the device (the
playout target's wait), that block's callback -> heard (the device).

Goals (medians, this 2-core machine): push-to-talk <= 40 ms, hands-free <= 30 ms above
the server's wait, barge-in <= 30 ms. Printed: per figure the median over all trials
with the range (min-max) of trials and of per-run medians, and PASS/FAIL.

The reply goes straight to the sound server, as the app's does wherever one runs
(`emodesk.audio.server_output`); `--output portaudio` sends it through PortAudio, as
where none does, for comparison.

`python -m bench.bench_latency [--runs N] [--trials N] [--output server|portaudio]`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

GOALS_MS = {"ptt_key": 40.0, "ptt_controller": 40.0, "hands_free": 30.0, "barge_in": 30.0}
LABELS = {
    "ptt_key": "push-to-talk, key up -> first reply sound",
    "ptt_debounce": "  share: key event -> push_to_talk_up (a repeat wait, if any)",
    "ptt_controller": "push-to-talk, push_to_talk_up -> first reply sound",
    "ptt_to_server": "  share: push_to_talk_up -> the server ends the turn",
    "ptt_server": "  share: the server ends the turn -> its first reply audio sent",
    "ptt_client": "  share: first reply audio sent -> first sound at the speaker",
    "ptt_socket": "    of it: sent -> given to the engine (play())",
    "ptt_hop": "    of it: play() -> in the playout buffer (the engine thread)",
    "ptt_wait": "    of it: in the playout buffer -> first reply block handed to the device",
    "ptt_device": "    of it: that block's callback -> heard at the speaker",
    "hands_free": "hands-free, end of speech -> first reply sound, less the server's wait",
    "hf_to_server": "  share: end of speech -> the server ends the turn, less its wait",
    "hf_server": "  share: the server ends the turn -> its first reply audio sent",
    "hf_client": "  share: first reply audio sent -> first sound at the speaker",
    "hf_socket": "    of it: sent -> given to the engine (play())",
    "hf_hop": "    of it: play() -> in the playout buffer (the engine thread)",
    "hf_wait": "    of it: in the playout buffer -> first reply block handed to the device",
    "hf_device": "    of it: that block's callback -> heard at the speaker",
    "barge_in": "barge-in (hands-free), speech onset -> reply silent",
    "bi_to_server": "  share: speech onset -> the server sends `interrupted`",
    "bi_to_flush": "  share: `interrupted` sent -> the app flushes the reply (flush())",
    "bi_silence": "  share: flush() -> the reply's last sound at the speaker",
}


def voiced(seconds: float, rate: int, f0: float, amplitude: float) -> np.ndarray:
    """A steady voiced signal (harmonics of f0) with 1 ms fades: sound from its first
    millisecond to its last."""
    t = np.arange(round(seconds * rate)) / rate
    signal = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.001)
    out = signal * fade
    return (out / np.abs(out).max() * amplitude).astype(np.int16)


async def one_run(
    trials: int, pulse: Any, tmp: Path, frame_ms: int | None
) -> dict[str, list[float]]:
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    from bench.reply_path import ReplyTrace, split_turn
    from bench.soak import EmulatorProcess, Monitor
    from emodesk.app import Backend, BackendOptions, window_options
    from emodesk.conversation.api import ConversationState, StateChanged, TurnClosed
    from emodesk.core.consent import ConsentRecord
    from emodesk.ui.main_window import MainWindow
    from emodesk.ui.settings_store import SettingsStore, open_qsettings
    from tests.support.pulse import write_wav

    S = ConversationState
    emulator = EmulatorProcess([sys.executable, "-m", "bench.bench_latency", "--emulator"])
    emulator_marks: dict[str, list[float]] = {}

    def marks() -> None:  # the emulator's clock is the same CLOCK_MONOTONIC
        emulator_marks.update(json.loads(emulator.say("marks")))

    def shares(prefix: str, start: float, onset: float, wait_s: float = 0.0) -> None:
        marks()
        split = split_turn(emulator_marks, trace, start, onset, wait_s)
        for name, seconds in split.items():
            if f"{prefix}_{name}" in out:
                out[f"{prefix}_{name}"].append(seconds)

    speech = write_wav(tmp / "speech.wav", voiced(1.0, 16000, 140.0, 9000), 16000)

    store = SettingsStore(open_qsettings(str(tmp / "settings.ini")))
    loaded, _ = store.load()
    settings = dataclasses.replace(loaded, consent=ConsentRecord.decline())
    if frame_ms is not None:
        settings = dataclasses.replace(settings, frame_ms=frame_ms)
    window = MainWindow(window_options(), store, settings)
    window.show()
    backend = Backend(
        window,
        BackendOptions(
            endpoint=emulator.url, ca_file=emulator.ca_file, history_path=str(tmp / "h.db")
        ),
    )
    await backend.start()
    trace = ReplyTrace()
    backend.audio.observer = trace
    controller = backend.controller
    closed: list[float] = []
    states: list[StateChanged] = []

    def on_event(event: Any) -> None:
        if isinstance(event, TurnClosed):
            closed.append(time.monotonic())
        elif isinstance(event, StateChanged):
            states.append(event)

    controller.subscribe(on_event)
    ups: list[float] = []
    push_to_talk_up = controller.push_to_talk_up

    def timed_up() -> bool:  # the window calls the controller's method by name
        ups.append(time.monotonic())
        return bool(push_to_talk_up())

    controller.push_to_talk_up = timed_up
    mic = Monitor(pulse, "mic.monitor", 16000)
    spk = Monitor(pulse, "spk.monitor", 24000)

    async def until(predicate: Any, limit_s: float = 20.0) -> bool:
        deadline = time.monotonic() + limit_s
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def play(wait: bool = True) -> subprocess.Popen[bytes]:
        proc = pulse.play_into_mic(speech, wait=False)
        while wait and proc.poll() is None:  # noqa: ASYNC110 (a child process)
            await asyncio.sleep(0.005)
        return proc

    def key(kind: QEvent.Type) -> None:
        target = QApplication.focusWidget() or window
        event = QKeyEvent(kind, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " ", False)
        QApplication.sendEvent(target, event)

    out: dict[str, list[float]] = {k: [] for k in LABELS}
    if not await controller.connect():
        raise RuntimeError("the app did not connect to its emulator")
    await asyncio.sleep(2.5)  # the null sinks' start-up pause for fresh streams

    for _ in range(trials + 1):  # the first turn warms up (imports, first stream)
        await until(lambda: controller.state is S.READY)
        await asyncio.sleep(0.5)
        n = len(closed)
        key(QEvent.Type.KeyPress)
        await play()
        await asyncio.sleep(0.1)
        t_key = time.monotonic()
        key(QEvent.Type.KeyRelease)
        await until(lambda n=n: len(closed) > n)
        onset = spk.first_sound(t_key, time.monotonic())
        if onset is not None and ups and ups[-1] >= t_key:
            out["ptt_key"].append(onset - t_key)
            out["ptt_controller"].append(onset - ups[-1])
            out["ptt_debounce"].append(ups[-1] - t_key)
            shares("ptt", ups[-1], onset)
        await until(lambda: controller.state is S.READY)
        await asyncio.sleep(1.0)
    for k in [k for k in out if k.startswith("ptt")]:
        out[k] = out[k][1:]

    seen = len(states)
    controller.set_hands_free(True)
    await until(lambda: any("applied" in e.detail for e in states[seen:]), 30)
    wait_s = controller.settings.vad_silence_ms / 1000
    flushes: list[float] = []
    engine = backend.audio
    engine_flush = engine.flush

    def timed_flush() -> float:  # the controller (on either thread) calls it by name
        flushes.append(time.monotonic())
        return engine_flush()

    engine.flush = timed_flush  # type: ignore[method-assign]
    hands_free: list[float] = []
    barge: list[float] = []
    for _ in range(trials + 1):
        await until(lambda: controller.state is S.READY)
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        await play()
        await until(lambda t0=t0: spk.first_sound(t0, time.monotonic()) is not None, 10)
        end = mic.last_sound(t0, time.monotonic())
        onset = spk.first_sound(t0, time.monotonic())
        if end is not None and onset is not None:
            hands_free.append(onset - end - wait_s)
            shares("hf", end, onset, wait_s)
        # Speak over the reply, 0.5 s into it.
        await asyncio.sleep(0.5)
        t1 = time.monotonic()
        proc = await play(wait=False)
        await until(lambda t1=t1: mic.first_sound(t1, time.monotonic()) is not None, 5)
        speak_at = mic.first_sound(t1, time.monotonic())
        await asyncio.sleep(0.4)  # the reply has fallen silent by now, or it failed to
        last = spk.last_sound(t1 - 1.0, time.monotonic())
        if speak_at is not None and last is not None:
            barge.append(last - speak_at)
            marks()
            t_int = next((t for t in emulator_marks["interrupted"] if t >= speak_at - 0.05), None)
            t_flush = next((t for t in flushes if t_int is not None and t >= t_int), None)
            if t_int is not None and t_flush is not None:
                out["bi_to_server"].append(t_int - speak_at)
                out["bi_to_flush"].append(t_flush - t_int)
                out["bi_silence"].append(last - t_flush)
        while proc.poll() is None:  # noqa: ASYNC110 (a child process)
            await asyncio.sleep(0.01)
        await until(lambda: controller.state is S.READY, 20)  # the barge-in turn answered
        await asyncio.sleep(2.5)  # ... and its reply played out
    out["hands_free"] = hands_free[1:]
    out["barge_in"] = barge[1:]
    for k in [k for k in out if k.startswith(("hf_", "bi_"))]:
        out[k] = out[k][1:]
    underruns = backend.audio.counters.underruns
    underflows = backend.audio.counters.device_underflows
    target = backend.audio.playout_target_ms
    mic.stop()
    spk.stop()
    await backend.stop()
    window.close()
    emulator.stop()
    out["underruns"] = [float(underruns)]
    out["device_underflows"] = [float(underflows)]
    out["playout_target_ms"] = [target]
    return out


def run_emulator() -> None:
    """The soak's emulator (its own process, as a remote server is, its turns timed:
    `marks` on stdin answers them as JSON), answering at once: its reply synthesis
    replaced by audio made ahead."""
    import emodesk.live.emulator.server as emulator_server
    from bench import soak
    from emodesk.core.pcm import REPLY_RATE

    reply = voiced(2.0, REPLY_RATE, 190.0, 12000).tobytes()
    emulator_server.synthesize = lambda text, voice, *a, **k: reply  # type: ignore[assignment]
    soak.run_emulator()


def child(trials: int, frame_ms: int | None, output: str) -> None:
    """One run, in this process; prints its figures (seconds) as one JSON line."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from emodesk.app.heap import limit_malloc_arenas
    from tests.support.pulse import PulseStack

    if output == "portaudio":  # as where no sound server takes a stream of its own
        from emodesk.audio.devices import AudioDeviceError
        from emodesk.audio.server_output import ServerOutput

        def refused(*_args: object, **_kwargs: object) -> None:
            raise AudioDeviceError("bench_latency --output portaudio")

        ServerOutput.__init__ = refused  # type: ignore[method-assign]

    limit_malloc_arenas()  # as `emodesk` (app.run) does before its first thread
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    with PulseStack() as pulse, tempfile.TemporaryDirectory(prefix="emodesk-lat-") as tmp:
        os.environ["XDG_STATE_HOME"] = os.environ["XDG_DATA_HOME"] = tmp
        os.environ.pop("GEMINI_API_KEY", None)
        app = QApplication.instance() or QApplication(sys.argv[:1])
        app.setQuitOnLastWindowClosed(False)
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            figures = loop.run_until_complete(one_run(trials, pulse, Path(tmp), frame_ms))
    print("FIGURES " + json.dumps(figures), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_latency")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--frame-ms", type=int, help="the app's frame length setting")
    parser.add_argument(
        "--output",
        choices=("server", "portaudio"),
        default="server",
        help="replies straight to the sound server (the app's default) or through PortAudio",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else [])
    if args.emulator:
        run_emulator()
        return
    if args.child:
        child(args.trials, args.frame_ms, args.output)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.pulse import missing_binaries

    if missing_binaries():
        print(f"skipped: PulseAudio binaries missing: {missing_binaries()}")
        return
    from bench.figures import StolenTime

    steal = StolenTime()
    runs: list[dict[str, list[float]]] = []
    for run in range(args.runs):
        command = [sys.executable, "-m", "bench.bench_latency", "--child"]
        command += ["--trials", str(args.trials), "--output", args.output]
        if args.frame_ms is not None:
            command += ["--frame-ms", str(args.frame_ms)]
        done = subprocess.run(
            command,
            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        line = next((x for x in done.stdout.splitlines() if x.startswith("FIGURES ")), None)
        if line is None:
            print(f"run {run + 1} failed ({done.returncode}): {done.stderr[-1500:]}")
            continue
        runs.append(json.loads(line.removeprefix("FIGURES ")))
    if not runs:
        return
    print(
        f"{len(runs)} runs (fresh app each), {args.trials} trials per figure per run, "
        f"emulator answering at once, real window and PulseAudio null sinks, replies "
        + ("straight to the sound server" if args.output == "server" else "through PortAudio")
        + (f", frame length {args.frame_ms} ms" if args.frame_ms else "")
        + f"; {steal.label()}"
    )
    for name, label in LABELS.items():
        every = [v * 1000 for r in runs for v in r[name]]
        if not every:
            print(f"{label}: no samples")
            continue
        medians = [float(np.median(r[name])) * 1000 for r in runs if r[name]]
        goal = GOALS_MS.get(name)
        verdict = ""
        if goal is not None:
            verdict = f"  goal <= {goal:.0f} ms: {'PASS' if np.median(every) <= goal else 'FAIL'}"
        print(
            f"{label}: median {np.median(every):.1f} ms, trials {min(every):.1f}-"
            f"{max(every):.1f} ms, run medians {min(medians):.1f}-{max(medians):.1f} ms "
            f"(n={len(every)}){verdict}"
        )
    print(
        f"playout underruns over the runs: {sum(int(r['underruns'][0]) for r in runs)}; "
        "device underflows: "
        f"{sum(int(r['device_underflows'][0]) for r in runs)}; "
        "adaptive playout target at the end of each run: "
        + ", ".join(f"{r['playout_target_ms'][0]:.1f} ms" for r in runs)
    )


if __name__ == "__main__":
    main(sys.argv[1:])
