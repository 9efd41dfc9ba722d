"""Audio engine figures on a private PulseAudio null-sink stack.

Prints: push-to-talk press (start_capture) -> first frame on the loop, and the first
frame captured after the press (20 presses, the input held open by prepare_capture);
a reply after a flush (barge-in): play() -> playback started and -> heard at the speaker
monitor; capture callback -> frame on the loop (p50/p99), play() -> playout buffer
(p50/p99), playout underruns, device underflows (the output device ran dry), overflows
and engine CPU, each over `--runs` runs (default 3) of
`--seconds` with the loop thread loaded like a busy GUI, printed as a median and range
over the runs with PASS/FAIL against design.md's budgets; flush -> silence at the
speaker monitor over 20 trials; AEC echo reduction through the engine's own alignment on
an echo path through the sound server (median and range over the runs), and on a
simulated room offline (a synthetic impulse response, not a measured room).

`python -m bench.bench_audio [--seconds N] [--runs N] [--frame-ms N] [--latency-only]`
(default: 3 runs of 5 minutes, or of $EMODESK_BENCH_AUDIO_S seconds, also under `make
bench`; the frame length setting's default unless --frame-ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.figures import StolenTime, over_runs
from bench.soak import Monitor
from emodesk.audio import AudioEngine, AudioSettings
from emodesk.audio.echo import EchoCanceller
from emodesk.dsp.levels import rms_dbfs
from emodesk.dsp.resample import resample
from tests.support.pulse import PulseStack, espeak_wav, missing_binaries, read_wav

# The 5-minute run; EMODESK_BENCH_AUDIO_S shortens it for a quick look.
DEFAULT_SECONDS = float(os.environ.get("EMODESK_BENCH_AUDIO_S") or 300.0)
RUNS = 3  # load runs and AEC runs: each figure is printed as a median and range over them
FLUSH_TRIALS = 20
AEC_FLOOR_DB = 20.0
# The frame length setting for every engine here (--frame-ms); None: the setting's default.
FRAME_MS: int | None = None


def _settings(**chosen: object) -> AudioSettings:
    if FRAME_MS is not None:
        chosen["frame_ms"] = FRAME_MS
    return AudioSettings(**chosen)  # type: ignore[arg-type]


def _pct(values: list[float]) -> str:
    if not values:
        return "no samples"
    a = np.array(values) * 1000
    return f"p50 {np.percentile(a, 50):.2f} ms  p99 {np.percentile(a, 99):.2f} ms  (n={a.size})"


def _to_device(
    chunks: list[tuple[float, float, int]], device: list[tuple[int, float]]
) -> list[float]:
    """For each chunk, play() to the output callback that hands its first sample to the
    device (a callback's entry: reply samples handed over so far, its time)."""
    if not chunks or not device:
        return []
    played = np.array([n for n, _ in device])
    times = np.array([t for _, t in device])
    firsts = np.array([first for _, _, first in chunks])
    at = np.searchsorted(played, firsts, side="right")  # first callback past that sample
    return [
        float(times[i] - t_play)
        for (t_play, _, _), i in zip(chunks, at, strict=True)
        if i < times.size
    ]


def _thread_cpu_s(tid: int) -> float:
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _gui_load(stop: threading.Event) -> None:
    """Busy the loop thread like plots redrawing at 30 Hz (~8 ms of Python per tick)."""
    loop = asyncio.get_running_loop()

    def tick() -> None:
        if stop.is_set():
            return
        end = time.perf_counter() + 0.008
        x = 0
        while time.perf_counter() < end:
            x += 1
        loop.call_later(1 / 30, tick)

    tick()


def _ms(values: list[float]) -> str:
    a = np.array(values) * 1000
    return f"p50 {np.median(a):.1f} ms  max {a.max():.1f} ms  (n={a.size})"


class Trace:
    """The engine's measurement hooks as the bench reads them: capture callback time per
    frame posted; (play() time, in-buffer time, index of the chunk's first sample among
    all reply samples buffered); (reply samples handed to the device so far, callback
    time)."""

    def __init__(self) -> None:
        self.capture: deque[float] = deque()
        self.playout: deque[tuple[float, float, int]] = deque()
        self.device: deque[tuple[int, float]] = deque()
        self._written = 0
        self._played = 0

    def frame_posted(self, t_callback: float) -> None:
        self.capture.append(t_callback)

    def reply_buffered(self, t_play: float, t_buffered: float, samples: int) -> None:
        self.playout.append((t_play, t_buffered, self._written))
        self._written += samples

    def reply_played(self, samples: int, t_callback: float) -> None:
        self._played += samples
        self.device.append((self._played, t_callback))


async def _until(condition: Callable[[], object], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.002)
    return True


async def press_to_first_frame(presses: int = 20) -> tuple[list[float], list[float]]:
    """Per press: start_capture -> first frame on the loop, and -> the first frame whose
    audio was captured after the press (its callback came after it)."""
    loop = asyncio.get_running_loop()
    engine = AudioEngine(loop, _settings())
    trace = engine.observer = Trace()
    engine.start()
    prepare = getattr(engine, "prepare_capture", None)  # absent before the fix
    if prepare is not None:
        prepare()
        await _until(lambda: engine.mic_ring.total_written > 16000, 10)  # warmed up: 1 s captured
    first: list[float] = []
    first_live: list[float] = []
    for _ in range(presses):
        got: list[float] = []
        live: list[float] = []
        t_press = time.monotonic()

        def on_frame(_: bytes, got=got, live=live, t_press=t_press) -> None:  # type: ignore[no-untyped-def]
            now = time.monotonic()
            got.append(now)
            t_callback = trace.capture.popleft() if trace.capture else now
            if t_callback >= t_press and not live:
                live.append(now)

        engine.start_capture(on_frame)
        await _until(lambda live=live: bool(live), 10)
        if got:
            first.append(got[0] - t_press)
        if live:
            first_live.append(live[0] - t_press)
        await asyncio.sleep(0.3)  # a short turn
        engine.stop_capture()
        await asyncio.sleep(0.3)
        trace.capture.clear()
    await asyncio.to_thread(engine.close)
    return first, first_live


async def reply_after_flush(pulse: PulseStack, trials: int = 10) -> tuple[list[float], list[float]]:
    """A reply interrupted by a flush (barge-in), then the next reply: its play() ->
    playback started (the callback took it) and -> heard at the speaker monitor."""
    loop = asyncio.get_running_loop()
    engine = AudioEngine(loop, _settings())
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    engine.start()
    rec = pulse.start_recording("spk.monitor", 24000)
    arrivals: list[tuple[float, float]] = []

    def reader() -> None:
        assert rec.stdout is not None
        while chunk := rec.stdout.read(96):  # 2 ms
            arrivals.append((time.monotonic(), float(np.abs(np.frombuffer(chunk, np.int16)).max())))

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    await asyncio.sleep(2.5)  # the first stream's start-up pause, as at app start
    t = np.arange(12000) / 24000
    tone = (10000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).tobytes()
    to_started: list[float] = []
    to_heard: list[float] = []
    for _ in range(trials):
        engine.play(tone, 24000)
        await _until(lambda: bool(started), 5)
        await asyncio.sleep(0.2)
        engine.flush()
        await asyncio.sleep(0.3)  # the server's next reply
        started.clear()
        t0 = time.monotonic()
        engine.play(tone, 24000)
        if await _until(lambda: bool(started), 5):
            to_started.append(started[0] - t0)
        await asyncio.sleep(0.6)
        heard = [a for a, peak in list(arrivals) if a >= t0 and peak > 3000]
        if heard:
            to_heard.append(heard[0] - t0)
        started.clear()
        # A conversation's next reply comes after the user's next turn: audio resuming
        # within half a second of running dry is a gap inside one reply to the playout
        # buffer (an underrun, and lateness its target would grow by).
        await asyncio.sleep(0.8)
    rec.terminate()
    th.join(5)
    await asyncio.to_thread(engine.close)
    return to_started, to_heard


async def _load_run(
    pulse: PulseStack, speech: Path, reply24: np.ndarray, seconds: float
) -> dict[str, float]:
    """One run of `seconds`: full duplex with AEC, speech into the microphone, a reply
    streamed in 40 ms chunks at real time with up to 20 ms of jitter, the loop thread
    busy like a GUI. Its figures, printed on one line and returned."""
    loop = asyncio.get_running_loop()
    engine = AudioEngine(loop, _settings(echo_mode="full_duplex_aec"))
    trace = Trace()
    engine.observer = trace
    capture_lat: list[float] = []

    def on_frame(_: bytes) -> None:
        now = time.monotonic()
        if trace.capture:
            capture_lat.append(now - trace.capture.popleft())

    stop = threading.Event()
    # Someone listens at the speaker, as in bench_latency and the soak. An idle null sink
    # renders 2 s ahead, so a stream the pulse plugin re-creates after a server-side
    # underrun gets no callback for ~2 s; a client on its monitor keeps the sink's
    # latency low, as a sound card's period does (measured here, 60 s runs: 2-12 such
    # stalls a minute, 1.9-11.6 s trimmed, without a listener; 0.00-0.24 s with one).
    speaker = Monitor(pulse, "spk.monitor", 24000)
    engine.start_capture(on_frame)
    await asyncio.sleep(2.5)  # the null sink's fresh-stream pause
    _gui_load(stop)
    main_tid = threading.get_native_id()
    cpu0, main0, t0 = _process_cpu_s(), _thread_cpu_s(main_tid), time.monotonic()
    steal = StolenTime()
    feeder = pulse.play_into_mic(speech, wait=False)
    rng = np.random.default_rng(0)
    pos = 0
    sent = 0.0
    underrun_at: list[float] = []  # seconds into the run, each as it was counted
    while time.monotonic() - t0 < seconds:
        while len(underrun_at) < engine.counters.underruns:
            underrun_at.append(time.monotonic() - t0)
        # 40 ms chunks at real time with up to 20 ms of network jitter.
        chunk = reply24[pos : pos + 960]
        pos = (pos + 960) % (reply24.size - 960)
        engine.play(chunk.tobytes(), 24000)
        sent += 0.04
        ahead = t0 + sent - time.monotonic()
        await asyncio.sleep(max(0.0, ahead + rng.uniform(-0.02, 0.0)))
        if feeder.poll() is not None:
            feeder = pulse.play_into_mic(speech, wait=False)
    elapsed = time.monotonic() - t0
    cpu = _process_cpu_s() - cpu0 - (_thread_cpu_s(main_tid) - main0)
    stop.set()
    speaker.stop()
    feeder.wait(30)
    engine.stop_capture()
    counters = engine.counters
    device_lat = np.array(_to_device(list(trace.playout), list(trace.device)) or [np.nan])
    capture = np.array(capture_lat or [np.nan])
    await asyncio.to_thread(engine.close)
    run = {
        "capture_p50": float(np.percentile(capture, 50)) * 1000,
        "capture_p99": float(np.percentile(capture, 99)) * 1000,
        "device_p50": float(np.percentile(device_lat, 50)) * 1000,
        "device_p99": float(np.percentile(device_lat, 99)) * 1000,
        "underruns": float(counters.underruns),
        "device_underflows": float(counters.device_underflows),
        "overflows": float(counters.overflows),
        "device_errors": float(counters.device_errors),
        "trimmed_s": counters.playout_trimmed_samples / 24000,
        "target_ms": engine.playout_target_ms,
        "cpu_percent": 100 * cpu / elapsed,
        "steal_percent": float("nan") if (stolen := steal.percent()) is None else stolen,
    }
    print(
        f"  run of {elapsed:.0f} s: capture callback -> frame on loop p50 "
        f"{run['capture_p50']:.2f} / p99 {run['capture_p99']:.2f} ms (n={len(capture_lat)}); "
        f"play() -> device p50 {run['device_p50']:.1f} / p99 {run['device_p99']:.1f} ms; "
        f"underruns {counters.underruns}"
        + (f" (at {', '.join(f'{t:.1f}' for t in underrun_at)} s)" if underrun_at else "")
        + f", device underflows {counters.device_underflows}"
        + f", overflows {counters.overflows}, device errors "
        f"{counters.device_errors}, trimmed {run['trimmed_s']:.2f} s, playout target "
        f"{run['target_ms']:.1f} ms; engine CPU {run['cpu_percent']:.1f}%; "
        f"{run['steal_percent']:.1f}% of busy CPU stolen by the host",
        flush=True,
    )
    return run


async def _flush_trials(pulse: PulseStack, trials: int) -> tuple[list[float], int]:
    """Per trial: a steady tone playing, flush(), and the last loud 5 ms block read from
    the speaker monitor after it (parec's own latency included). Trials where no block
    read after the flush was loud are counted apart, not as 0 ms."""
    loop = asyncio.get_running_loop()
    flush_ms: list[float] = []
    silent_at_once = 0
    for _ in range(trials):
        engine = AudioEngine(loop, _settings())
        started: list[float] = []
        engine.set_listeners(on_playback_started=started.append)
        engine.start()
        rec = pulse.start_recording("spk.monitor", 24000)
        arrivals: list[tuple[float, np.ndarray]] = []

        def reader(proc=rec, out=arrivals) -> None:  # type: ignore[no-untyped-def]
            assert proc.stdout is not None
            while chunk := proc.stdout.read(240):  # 5 ms
                out.append((time.monotonic(), np.frombuffer(chunk, np.int16)))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        await asyncio.sleep(0.3)
        t = np.arange(24000 * 3) / 24000
        engine.play((10000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).tobytes(), 24000)
        await _until(started.__len__, 10)
        await asyncio.sleep(0.4)
        t_flush = time.monotonic()
        engine.flush()
        await asyncio.sleep(0.6)
        rec.terminate()
        th.join(5)
        await asyncio.to_thread(engine.close)
        if not any(t < t_flush and np.abs(c).max() > 500 for t, c in arrivals):
            continue  # the tone was never heard: this trial says nothing
        loud_after = [t for t, c in arrivals if t >= t_flush and np.abs(c).max() > 500]
        if loud_after:
            flush_ms.append((loud_after[-1] - t_flush) * 1000)
        else:
            silent_at_once += 1
    return flush_ms, silent_at_once


class _EchoTap:
    """What the engine's input callback was handed (the echo, before AEC), timed."""

    def __init__(self, engine: AudioEngine) -> None:
        self.blocks: list[tuple[float, np.ndarray]] = []
        capture: Callable[..., object] = engine._input_callback

        def input_callback(in_data: bytes | None, frames: int, t: object, status: int) -> object:
            if in_data:
                self.blocks.append((time.monotonic(), np.frombuffer(in_data, np.int16).copy()))
            return capture(in_data, frames, t, status)

        engine._input_callback = input_callback  # type: ignore[method-assign,assignment]


async def _aec_loopback_run(pulse: PulseStack, reply24: np.ndarray) -> tuple[float, int]:
    """The engine's AEC on a real echo path through the sound server (the speaker's
    monitor looped into the microphone, 30 ms): the echo handed to the engine and the
    frames it delivered, compared in the same half-second windows (timed on arrival)
    over the second half of the reply; the median window (dB) and the window count."""
    loop = asyncio.get_running_loop()
    loopback = pulse.load_module(
        "module-loopback", "source=spk.monitor", "sink=mic", "latency_msec=30"
    )
    try:
        engine = AudioEngine(loop, _settings(echo_mode="full_duplex_aec"))
        tap = _EchoTap(engine)  # bound before the input stream opens
        cleaned: list[tuple[float, bytes]] = []
        started: list[float] = []
        engine.set_listeners(on_playback_started=started.append)
        engine.start_capture(lambda frame: cleaned.append((time.monotonic(), frame)))
        await asyncio.sleep(2.5)  # the null sinks' fresh-stream pause
        long_reply = np.tile(reply24, 4)
        engine.play(long_reply.tobytes(), 24000)
        await _until(lambda: bool(started), 10)
        await _until(lambda: not engine.reply_active, 60)
        engine.stop_capture()
        await asyncio.to_thread(engine.close)
    finally:
        pulse.unload_module(loopback)
    if not started:
        return float("nan"), 0
    span = long_reply.size / 24000
    windows: list[float] = []
    t = started[0] + span / 2
    while t + 0.5 <= started[0] + span - 0.2:
        echo = [b for at, b in tap.blocks if t <= at < t + 0.5]
        out = [np.frombuffer(f, np.int16) for at, f in cleaned if t <= at < t + 0.5]
        if echo and out:
            windows.append(rms_dbfs(np.concatenate(echo)) - rms_dbfs(np.concatenate(out)))
        t += 0.5
    return (float(np.median(windows)) if windows else float("nan")), len(windows)


def _simulated_room_db(source: np.ndarray, rate: int) -> float:
    """EchoCanceller alone on a synthetic room (30 ms delay, 50 ms reverb), its reference
    aligned: deterministic, the same every run."""
    far = np.tile(resample(source, rate, 16000), 3)
    rng = np.random.default_rng(7)
    taps = 800
    rir = rng.standard_normal(taps) * np.exp(-np.arange(taps) / 160)
    rir[0] = 3.0
    rir /= np.sqrt(np.sum(rir**2))
    near = np.concatenate((np.zeros(480), np.convolve(far.astype(float), rir)))[: far.size]
    near = np.clip(near * 0.5, -32768, 32767).astype(np.int16)
    aec = EchoCanceller()
    cleaned_room = np.concatenate(
        [
            aec.process_with_far(near[i : i + 320], far[i : i + 320])
            for i in range(0, far.size - 319, 320)
        ]
    )
    tail = slice(far.size // 2, cleaned_room.size)
    return rms_dbfs(near[tail]) - rms_dbfs(cleaned_room[tail])


async def _run(pulse: PulseStack, speech: Path, seconds: float, runs: int) -> None:
    # ---- push-to-talk press and reply-after-barge-in latency -------------------------
    first, first_live = await press_to_first_frame()
    print(f"press -> first frame on loop:             {_ms(first)}")
    print(f"press -> first frame captured after press: {_ms(first_live)}")
    to_started, to_heard = await reply_after_flush(pulse)
    print(f"reply after a flush: play() -> started {_ms(to_started)}; -> heard {_ms(to_heard)}")

    # ---- flush to silence at the speaker monitor -------------------------------------
    flush_ms, silent_at_once = await _flush_trials(pulse, FLUSH_TRIALS)
    heard = len(flush_ms) + silent_at_once
    print(
        f"flush -> silence at the speaker monitor, {heard} trials: {silent_at_once} already "
        f"silent in the first 5 ms block read after the flush; the others, last loud 5 ms "
        f"block after the flush (parec's latency included):"
    )
    over_runs(
        "  flush -> silence",
        flush_ms,
        "ms",
        at_most=50.0,
        budget_note=" (design: PTT during a reply -> silence < 50 ms)",
        of="trial",
    )
    if seconds <= 0:
        return
    source, rate = read_wav(speech)
    reply24 = resample(source, rate, 24000)

    # ---- latency and stability under load, repeated runs -----------------------------
    print(
        f"{runs} runs of {seconds:.0f} s each: loop thread busy ~25% (30 Hz x 8 ms), full "
        "duplex + AEC, speech into the microphone, a reply streamed at real time, heard "
        f"at the speaker's monitor; frame length {_settings().frame_ms} ms"
    )
    results = [await _load_run(pulse, speech, reply24, seconds) for _ in range(runs)]

    def each(key: str) -> list[float]:
        return [r[key] for r in results if not np.isnan(r[key])]

    over_runs(
        "capture callback -> frame on the loop, p99",
        each("capture_p99"),
        "ms",
        at_most=10.0,
        decimals=2,
        budget_note=" (design: captured -> WebSocket p99 < 10 ms; this is its first part)",
    )
    over_runs("capture callback -> frame on the loop, p50", each("capture_p50"), "ms", decimals=2)
    over_runs(
        "play() -> handed to the device, p99",
        each("device_p99"),
        "ms",
        at_most=70.0,
        budget_note=" (design: p99 < 10 ms plus a playout buffer of at most 60 ms)",
    )
    over_runs("play() -> handed to the device, p50", each("device_p50"), "ms")
    over_runs(
        "underruns per run",
        each("underruns"),
        "",
        at_most=0.0,
        decimals=0,
        budget_note=" (issue 15)",
    )
    over_runs(
        "device underflows per run (the output device ran dry: a gap at the speaker)",
        each("device_underflows"),
        "",
        decimals=0,
    )
    over_runs("overflows per run", each("overflows"), "", at_most=0.0, decimals=0)
    over_runs("device errors per run", each("device_errors"), "", at_most=0.0, decimals=0)
    over_runs("reply audio trimmed to catch up per run", each("trimmed_s"), "s", decimals=2)
    over_runs("adaptive playout target at the end of a run", each("target_ms"), "ms")
    over_runs("engine CPU (all threads but the loop's), % of one core", each("cpu_percent"), "%")
    over_runs("busy CPU time stolen by a VM's host", each("steal_percent"), "%")

    # ---- echo reduction ----------------------------------------------------------------
    aec = [await _aec_loopback_run(pulse, reply24) for _ in range(runs)]
    print(
        "AEC, echo path through the sound server (speaker monitor looped into the "
        "microphone, 30 ms), the engine's own alignment; per run the median of its "
        "half-second windows over the reply's second half (windows: "
        + ", ".join(str(n) for _, n in aec)
        + ")"
    )
    over_runs(
        "  AEC echo reduction, sound-server echo path",
        [d for d, n in aec if n],
        "dB",
        at_least=AEC_FLOOR_DB,
        budget_note=" (this project's floor; design.md sets none)",
    )
    print(
        "AEC echo reduction, simulated room (EchoCanceller alone, reference aligned, 30 ms "
        f"delay, 50 ms reverb; deterministic): {_simulated_room_db(source, rate):.1f} dB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_audio")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--runs", type=int, default=RUNS, help="load and AEC runs")
    parser.add_argument("--latency-only", action="store_true", help="press and flush only")
    parser.add_argument("--frame-ms", type=int, help="the app's frame length setting")
    args = parser.parse_args(argv if argv is not None else [])
    global FRAME_MS
    FRAME_MS = args.frame_ms
    seconds = 0.0 if args.latency_only else args.seconds
    if missing_binaries():
        print(f"skipped: PulseAudio binaries missing: {missing_binaries()}")
        return
    with PulseStack() as pulse:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            speech = espeak_wav(
                Path(tmp) / "s.wav",
                "The quick brown fox jumps over the lazy dog while the band plays on.",
                speed=160,
            )
            asyncio.run(_run(pulse, speech, seconds, args.runs))


if __name__ == "__main__":
    main(sys.argv[1:])
