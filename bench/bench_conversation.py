"""Conversation figures: per-turn latency through the whole stack (controller, real SDK
over TLS, emulator at real-time pacing, file audio), and the controller's own cost per
mic frame and per barge-in on fakes of its ports."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.figures import over_runs

TURNS = 6
RUNS = 3  # turn-latency runs: figures are printed as a median and range over them
FRAMES = 20_000


def _speech_like(seconds: float, seed: int) -> np.ndarray:
    """A voiced, syllable-modulated signal: enough for the emulator and the estimator."""
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (voiced * envelope * 4000).astype(np.int16)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _turn_latency(real_audio: bool = False) -> tuple[list[float], list[float]]:
    """One run of TURNS push-to-talk turns; per turn, release -> first reply audio
    received and -> first reply audio played (ms), printed and returned."""
    from emodesk.conversation.api import ConversationState as S
    from emodesk.conversation.api import TurnLatency
    from emodesk.conversation.controller import Connection, Controller
    from emodesk.conversation.file_audio import FileAudio
    from emodesk.core.consent import ConsentRecord
    from emodesk.core.settings import AppSettings
    from emodesk.dsp.estimator import AcousticEstimator
    from emodesk.live.emulator.server import EmulatorServer
    from emodesk.live.session import LiveSession
    from tests.conversation.fakes import FakeStore

    gap = np.zeros(8000, np.int16)
    parts = [gap]
    for i in range(TURNS):
        parts += [_speech_like(1.2, i), gap]
    mic = np.concatenate(parts)
    emulator = EmulatorServer(speed=1.0)
    await emulator.start()
    audio = FileAudio(mic, pace=1.0)
    engine: Any = None
    if real_audio:
        from emodesk.audio import AudioEngine

        engine = AudioEngine(asyncio.get_running_loop())
        engine.start()
    controller = Controller(
        live=LiveSession(),
        audio=engine or audio,
        store=FakeStore(),
        estimator_factory=AcousticEstimator,
        settings=AppSettings(consent=ConsentRecord.grant()),
        connection=Connection(emulator.url, emulator.ca_file, "bench-key", synthetic=True),
    )
    latencies: list[TurnLatency] = []
    controller.subscribe(lambda e: latencies.append(e) if isinstance(e, TurnLatency) else None)
    try:
        await controller.connect()
        step = 8000 + int(1.2 * 16000)
        for i in range(TURNS):
            await controller.wait_for_state(S.READY, limit_s=30)
            start = 8000 + i * step
            controller.push_to_talk_down()
            if engine is None:
                audio.seek(start - 1600)
                await audio.wait_position(start + int(1.2 * 16000) + 1600, limit_s=10)
            else:  # the null-sink mic hears silence; the emulator answers any turn
                await asyncio.sleep(1.2)
            controller.push_to_talk_up()
            await controller.wait_for_state(S.READY, limit_s=30)
            if engine is None:
                await audio.wait_played(limit_s=30)
            else:
                async with asyncio.timeout(30):
                    while engine.reply_active:  # noqa: ASYNC110  (engine thread state)
                        await asyncio.sleep(0.05)
    finally:
        await controller.close()
        await emulator.stop()
        if engine is not None:
            await asyncio.to_thread(engine.close)
    first = [t.to_first_audio_s * 1000 for t in latencies if t.to_first_audio_s is not None]
    played = [t.to_first_played_s * 1000 for t in latencies if t.to_first_played_s is not None]
    where = "real audio engine on PulseAudio null sinks" if real_audio else "file audio"
    print(
        f"  run of {len(latencies)} turns ({where}): release -> first reply audio received "
        f"median {statistics.median(first):.1f} ms (max {max(first):.1f}); -> played median "
        f"{statistics.median(played):.1f} ms (max {max(played):.1f})",
        flush=True,
    )
    return first, played


async def _controller_costs() -> None:
    from emodesk.conversation.controller import Connection, Controller
    from emodesk.core.consent import ConsentRecord
    from emodesk.core.settings import AppSettings
    from emodesk.live.events import AudioChunk, TurnComplete
    from tests.conversation.fakes import FakeAudio, FakeEstimator, FakeLive, FakeStore

    live, audio = FakeLive(), FakeAudio()
    controller = Controller(
        live=live,
        audio=audio,
        store=FakeStore(),
        estimator_factory=FakeEstimator,
        settings=AppSettings(consent=ConsentRecord.grant()),
        connection=Connection(),
    )
    await controller.connect()
    frame = b"\x01\x00" * 320
    controller.push_to_talk_down()
    on_frame: Callable[[bytes], Any] | None = audio.on_frame
    assert on_frame is not None
    per_frame: list[float] = []
    for _ in range(FRAMES):
        t0 = time.perf_counter()
        on_frame(frame)
        per_frame.append((time.perf_counter() - t0) * 1e6)
    live.wire.clear()
    controller.push_to_talk_up()
    barge: list[float] = []
    for _ in range(500):
        live.emit(AudioChunk(b"\x00\x00" * 960, 24000))
        t0 = time.perf_counter()
        controller.push_to_talk_down()  # flush + activity_start
        barge.append((time.perf_counter() - t0) * 1e6)
        controller.push_to_talk_up()
        live.emit(TurnComplete())
        live.wire.clear()
    await controller.close()
    print(
        f"controller per mic frame (fakes): p50 {_pct(per_frame, 0.5):.1f} us, "
        f"p99 {_pct(per_frame, 0.99):.1f} us over {FRAMES} frames"
    )
    print(
        f"push-to-talk during a reply -> flush issued (fakes): p50 {_pct(barge, 0.5):.1f} us, "
        f"p99 {_pct(barge, 0.99):.1f} us"
    )


def _summary(runs: list[tuple[list[float], list[float]]], where: str) -> None:
    print(
        f"push-to-talk turns, emulator at real-time pacing (its reply synthesis included), "
        f"TLS on loopback, {where}: per run the median of {TURNS} turns"
    )
    over_runs(
        "  release -> first reply audio received", [statistics.median(r) for r, _ in runs], "ms"
    )
    over_runs(
        "  release -> first reply audio played", [statistics.median(p) for _, p in runs], "ms"
    )


def main() -> None:
    asyncio.run(_controller_costs())
    _summary([asyncio.run(_turn_latency()) for _ in range(RUNS)], "file audio")
    from tests.support.pulse import PulseStack, missing_binaries

    if missing_binaries():
        print(f"real audio: skipped, missing {', '.join(missing_binaries())}")
        return
    pulse = PulseStack().start()
    try:
        runs = [asyncio.run(_turn_latency(real_audio=True)) for _ in range(RUNS)]
    finally:
        pulse.stop()
    _summary(runs, "real audio engine on PulseAudio null sinks")


if __name__ == "__main__":
    main()
