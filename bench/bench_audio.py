"""Audio engine figures on a private PulseAudio null-sink stack.

Prints: push-to-talk press (start_capture) -> first frame on the loop, and the first
frame captured after the press (20 presses, the input held open by prepare_capture);
a reply after a flush (barge-in): play() -> playback started and -> heard at the speaker
monitor; capture callback -> frame on the loop (p50/p99), play() -> playout buffer
(p50/p99), flush -> silence at the speaker monitor, underruns/overflows over a run with
the loop thread loaded like a busy GUI, engine CPU, and AEC echo reduction (an echo
path through the sound server, and a simulated room path offline: a synthetic impulse
response, not a measured room).

`python -m bench.bench_audio [--seconds N | --latency-only]` (default: 5 minutes, or
$EMODESK_BENCH_AUDIO_S seconds, also under `make bench`).
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

from emodesk.audio import AudioEngine, AudioSettings
from emodesk.audio.echo import EchoCanceller
from emodesk.dsp.levels import rms_dbfs
from emodesk.dsp.resample import resample
from tests.support.pulse import PulseStack, espeak_wav, missing_binaries, read_wav

# The 5-minute run; EMODESK_BENCH_AUDIO_S shortens it for a quick look.
DEFAULT_SECONDS = float(os.environ.get("EMODESK_BENCH_AUDIO_S") or 300.0)


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


async def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
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
    engine = AudioEngine(loop, AudioSettings())
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
    engine = AudioEngine(loop, AudioSettings())
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


async def _run(pulse: PulseStack, speech: Path, seconds: float) -> None:
    loop = asyncio.get_running_loop()

    # ---- push-to-talk press and reply-after-barge-in latency -------------------------
    first, first_live = await press_to_first_frame()
    print(f"press -> first frame on loop:             {_ms(first)}")
    print(f"press -> first frame captured after press: {_ms(first_live)}")
    to_started, to_heard = await reply_after_flush(pulse)
    print(f"reply after a flush: play() -> started {_ms(to_started)}; -> heard {_ms(to_heard)}")
    if seconds <= 0:
        return
    source, rate = read_wav(speech)
    reply24 = resample(source, rate, 24000)

    # ---- latency and stability under load ------------------------------------------
    engine = AudioEngine(loop, AudioSettings(echo_mode="full_duplex_aec"))
    trace = Trace()
    engine.observer = trace
    capture_lat: list[float] = []

    def on_frame(_: bytes) -> None:
        now = time.monotonic()
        if trace.capture:
            capture_lat.append(now - trace.capture.popleft())

    stop = threading.Event()
    engine.start_capture(on_frame)
    await asyncio.sleep(2.5)  # the null sink's fresh-stream pause
    _gui_load(stop)
    main_tid = threading.get_native_id()
    cpu0, main0, t0 = _process_cpu_s(), _thread_cpu_s(main_tid), time.monotonic()
    feeder = pulse.play_into_mic(speech, wait=False)
    rng = np.random.default_rng(0)
    pos = 0
    sent = 0.0
    while time.monotonic() - t0 < seconds:
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
    feeder.wait(30)
    engine.stop_capture()
    counters = engine.counters
    playout_lat = [b - a for a, b, _ in trace.playout]
    device_lat = _to_device(list(trace.playout), list(trace.device))
    await asyncio.to_thread(engine.close)
    print(f"run: {elapsed:.1f} s, loop thread busy ~25% (30 Hz x 8 ms), full duplex + AEC")
    print(f"capture callback -> frame on loop: {_pct(capture_lat)}")
    print(f"play() -> in playout buffer:       {_pct(playout_lat)}")
    print(
        f"play() -> to the device (callback): {_pct(device_lat)}  (adaptive playout "
        f"target at the end {engine.playout_target_ms:.1f} ms, ceiling "
        f"{engine.settings.playout_buffer_ms} ms)"
    )
    print(
        f"underruns {counters.underruns}, overflows {counters.overflows}, trimmed "
        f"{counters.playout_trimmed_samples / 24000:.2f} s, "
        f"frames delivered {counters.frames_delivered}, device errors "
        f"{counters.device_errors}"
    )
    print(f"engine CPU (all threads but the loop's): {100 * cpu / elapsed:.1f}% of one core")

    # ---- flush to silence at the speaker monitor -------------------------------------
    flush_ms: list[float] = []
    for _ in range(5):
        engine = AudioEngine(loop, AudioSettings())
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
        while not started:  # noqa: ASYNC110 (set from the engine via the loop)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.4)
        t_flush = time.monotonic()
        engine.flush()
        await asyncio.sleep(0.6)
        rec.terminate()
        th.join(5)
        loud_after = [t for t, c in arrivals if t >= t_flush and np.abs(c).max() > 500]
        flush_ms.append(((loud_after[-1] if loud_after else t_flush) - t_flush) * 1000)
        await asyncio.to_thread(engine.close)
    print(
        "flush -> silence at speaker monitor (last loud 5 ms block after flush, incl. "
        f"parec latency): median {np.median(flush_ms):.1f} ms, max {max(flush_ms):.1f} ms"
    )

    # ---- echo reduction through the sound server ---------------------------------------
    loopback = pulse.load_module(
        "module-loopback", "source=spk.monitor", "sink=mic", "latency_msec=30"
    )
    try:
        engine = AudioEngine(loop, AudioSettings(echo_mode="full_duplex_aec"))
        cleaned: list[bytes] = []
        raw = pulse.start_recording("mic.monitor", 16000)
        engine.start_capture(cleaned.append)
        await asyncio.sleep(2.5)
        cleaned.clear()
        long_reply = np.tile(reply24, 4)
        engine.play(long_reply.tobytes(), 24000)
        await asyncio.sleep(long_reply.size / 24000 + 0.3)
        engine.stop_capture()
        raw_mic = pulse.stop_recording(raw)
        await asyncio.to_thread(engine.close)
        out = np.frombuffer(b"".join(cleaned), np.int16)
        half = out.size // 2
        mic_loud = raw_mic[np.abs(raw_mic) > 0]
        print(
            f"AEC echo reduction, server loopback path (30 ms), second half: "
            f"{rms_dbfs(mic_loud[-half:]) - rms_dbfs(out[half:]):.1f} dB"
        )
    finally:
        pulse.unload_module(loopback)

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
    print(
        f"AEC echo reduction, simulated room (30 ms delay, 50 ms reverb), second half: "
        f"{rms_dbfs(near[tail]) - rms_dbfs(cleaned_room[tail]):.1f} dB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_audio")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--latency-only", action="store_true", help="press and flush only")
    args = parser.parse_args(argv if argv is not None else [])
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
            asyncio.run(_run(pulse, speech, seconds))


if __name__ == "__main__":
    main(sys.argv[1:])
