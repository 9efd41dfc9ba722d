"""The engine on a real audio stack (PortAudio -> ALSA pulse plugin -> PulseAudio null
sinks), driven from a plain asyncio loop with no Qt application or event loop anywhere,
as the headless `emodesk converse --device` drives it."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from emodesk.audio import AudioEngine, AudioSettings
from emodesk.audio.observer import AudioObserver
from emodesk.dsp.resample import resample
from tests.support.pulse import PulseStack, read_wav
from tests.support.signals import (
    assert_heard_whole_and_in_order,
    band_limited_noise,
    best_match,
    wait_until,
)

pytestmark = [pytest.mark.audio_stack, pytest.mark.timeout(60)]


@pytest.mark.parametrize("device_rate", [None, 48000], ids=["16k-device", "48k-resampled"])
async def test_speech_into_the_mic_arrives_as_16k_frames(
    pulse: PulseStack, speech_wav: Path, make_engine: Callable[..., AudioEngine], device_rate
) -> None:
    engine = make_engine(frame_ms=20, input_device_rate=device_rate)
    frames: list[bytes] = []
    engine.start_capture(frames.append)
    await wait_until(lambda: len(frames) >= 5, 10, "no frames from the microphone")
    await asyncio.to_thread(pulse.play_into_mic, speech_wav)
    source, rate = read_wav(speech_wav)
    expected = resample(source, rate, 16000)
    # Counted from when paplay is done: the speech's tail is still on its way then.
    need = len(frames) + 25
    await wait_until(lambda: len(frames) >= need, 10, "speech did not arrive")
    engine.stop_capture()

    assert engine.input_rate == (device_rate or 16000)
    frame_bytes = engine.settings.frame_samples * 2  # PCM16
    assert {len(f) for f in frames} == {frame_bytes}, "every frame is one frame length of PCM16"
    captured = np.frombuffer(b"".join(frames), dtype=np.int16)
    score, _ = best_match(captured, expected)
    assert score > 0.9, f"captured audio does not match the speech (ncc {score:.2f})"
    assert engine.counters.overflows == 0


async def test_reply_audio_comes_out_of_the_speaker_intact_and_in_order(
    pulse: PulseStack, make_engine: Callable[..., AudioEngine]
) -> None:
    engine = make_engine(playout_buffer_ms=40)
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    await pulse.engine_output_running(engine)
    # Four distinct 250 ms segments: if any were reordered, they would not line up.
    segments = [band_limited_noise(6000, seed) for seed in range(4)]
    reply = np.concatenate(segments)
    recorder = await asyncio.to_thread(pulse.start_recording, "spk.monitor", 24000)
    for i in range(0, reply.size, 960):  # 40 ms chunks, as the Live API sends them
        engine.play(reply[i : i + 960].tobytes(), 24000)
    await wait_until(lambda: bool(started), 10, "playback never started")
    await wait_until(lambda: not engine.reply_active, 10, "playback never finished")
    recorded = await asyncio.to_thread(pulse.stop_recording, recorder)

    assert_heard_whole_and_in_order(recorded, segments)
    assert engine.counters.underruns == 0


async def test_flush_silences_the_speaker(
    pulse: PulseStack, make_engine: Callable[..., AudioEngine]
) -> None:
    engine = make_engine()
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    await pulse.engine_output_running(engine)
    t = np.arange(24000 * 4) / 24000
    tone = (10000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    recorder = await asyncio.to_thread(pulse.start_recording, "spk.monitor", 24000)
    engine.play(tone.tobytes(), 24000)
    await wait_until(lambda: bool(started), 10, "playback never started")
    await asyncio.sleep(0.5)
    engine.flush()
    await asyncio.sleep(1.0)
    recorded = await asyncio.to_thread(pulse.stop_recording, recorder)

    loud = np.abs(recorded.astype(int)) > 1000
    assert loud.any(), "the tone was never heard"
    played_s = (np.flatnonzero(loud)[-1] - np.flatnonzero(loud)[0]) / 24000
    assert played_s < 2.0, f"the tone went on for {played_s:.2f} s after a flush at ~0.5 s"
    assert not loud[-12000:].any(), "the speaker is not silent after the flush"
    assert engine.counters.underruns == 0


async def test_half_duplex_holds_the_mic_while_the_reply_plays(
    pulse: PulseStack, make_engine: Callable[..., AudioEngine]
) -> None:
    engine = make_engine(echo_mode="half_duplex", half_duplex_tail_ms=100)
    frames: list[bytes] = []
    engine.start_capture(frames.append)
    await wait_until(lambda: len(frames) >= 3, 10, "no frames from the microphone")
    engine.play(np.full(24000, 1000, dtype=np.int16).tobytes(), 24000)
    await wait_until(lambda: engine.counters.frames_suppressed >= 10, 10, "mic never held")
    held_at = len(frames)
    await wait_until(lambda: not engine.reply_active, 10, "reply never ended")
    await wait_until(lambda: len(frames) >= held_at + 5, 10, "mic never reopened")
    held_ms = engine.counters.frames_suppressed * engine.settings.frame_ms
    assert held_ms >= 800  # ~1 s of reply and tail held back


async def test_a_device_failure_mid_stream_is_reported_and_survived() -> None:
    """The sound server dies under open streams: the engine reports it, never hangs the
    loop, and picks the devices up again when a server is back."""
    loop = asyncio.get_running_loop()
    errors: list[str] = []
    sides: set[str] = set()
    infos: list[tuple[str, str]] = []
    frames: list[bytes] = []
    stack = await asyncio.to_thread(PulseStack().start)
    engine = AudioEngine(loop, AudioSettings(recovery_attempts=6))

    def on_error(message: str, side: str) -> None:
        errors.append(message)
        sides.add(side)

    try:
        engine.set_listeners(on_error=on_error, on_info=lambda *info: infos.append(info))
        engine.start_capture(frames.append)
        await wait_until(lambda: len(frames) >= 5, 10, "no frames before the failure")
        assert stack.process is not None
        stack.process.send_signal(signal.SIGKILL)
        stack.process.wait(5)
        await wait_until(lambda: bool(errors), 15, "the failure was never reported")
        assert "stopped" in errors[0]
        assert sides == {"input"}, "a capturing microphone that stops is an input failure"
        # A new server at the same socket: the engine reopens and frames flow again.
        await asyncio.to_thread(stack.restart)
        await wait_until(lambda: bool(infos), 20, "never recovered")
        assert infos == [("audio devices reopened", "input")], "recovery is information"
        assert all("reopened" not in message for message in errors)
        count = len(frames)
        await wait_until(lambda: len(frames) >= count + 5, 10, "no frames after recovery")
    finally:
        await asyncio.to_thread(engine.close)
        await asyncio.to_thread(stack.stop)
    assert engine._thread is not None and engine._thread.isFinished()


async def test_a_reply_after_a_flush_plays_on_the_same_running_stream(
    make_engine: Callable[..., AudioEngine],
) -> None:
    """A flush restarts the output in place; the next reply (after a barge-in) is handed
    to the device whole, with no device reopened or recovered."""
    engine = make_engine()
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    engine.start()
    first, second = band_limited_noise(12000, 1), band_limited_noise(6000, 2)
    engine.play(first.tobytes(), 24000)
    await wait_until(lambda: bool(started), 10, "playback never started")
    engine.flush()
    started.clear()
    engine.play(second.tobytes(), 24000)
    await wait_until(lambda: bool(started), 10, "playback after the flush never started")
    await wait_until(lambda: not engine.reply_active, 10, "playback never finished")

    assert engine.output_rate == 24000  # the null sink takes the reply rate as it is
    # reply_ring holds what the output callback gave the device, newest last.
    given = engine.reply_ring.latest(24000)
    end = int(np.flatnonzero(given)[-1]) + 1
    assert np.array_equal(given[end - second.size : end], second), "the reply was not played whole"
    assert engine.counters.device_errors == 0, "the output had to be recovered"


class StallOnce(AudioObserver):
    """An observer that holds the output callback once, mid-reply, for longer than the
    sound server buffers: the device runs dry, as when the GIL holds the callback."""

    def __init__(self, after_samples: int, hold_s: float) -> None:
        self.after, self.hold_s, self.played, self.held = after_samples, hold_s, 0, False

    def reply_played(self, samples: int, t_callback: float) -> None:
        self.played += samples
        if not self.held and self.played >= self.after:
            self.held = True
            time.sleep(self.hold_s)


async def test_a_device_that_runs_dry_is_counted_and_the_reply_plays_on(
    make_engine: Callable[..., AudioEngine],
) -> None:
    """A callback held past the server's buffer empties the device; PortAudio says so
    (output underflow) and the engine counts it, apart from its own playout underruns,
    and plays the rest of the reply on the same stream."""
    engine = make_engine()
    observer = StallOnce(after_samples=4800, hold_s=0.15)
    engine.observer = observer
    engine.start()
    reply = band_limited_noise(24000, 4)
    engine.play(reply.tobytes(), 24000)
    await wait_until(lambda: observer.held, 10, "the reply never played")
    await wait_until(lambda: not engine.reply_active, 15, "the reply never finished")
    await wait_until(lambda: engine.counters.device_underflows >= 1, 5, "no underflow counted")

    counters = engine.counters
    assert counters.underruns == 0  # the playout buffer itself never ran dry
    assert counters.device_errors == 0
    assert observer.played == reply.size  # all of it taken by the device (or a catch-up trim)


async def test_hands_free_delivers_the_mic_while_the_reply_plays_and_back_when_off(
    make_engine: Callable[..., AudioEngine],
) -> None:
    """A half-duplex engine switched to hands-free delivers the mic while the reply plays
    (the user can interrupt by voice; AEC3 removes the echo instead, measured by
    bench_audio); switched back, it holds the mic during a reply again."""
    engine = make_engine(echo_mode="half_duplex", half_duplex_tail_ms=100)
    engine.set_hands_free(True)
    frames: list[bytes] = []
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    engine.start_capture(frames.append)
    await wait_until(lambda: len(frames) >= 5, 10, "no frames from the microphone")
    engine.play(band_limited_noise(24000, 5).tobytes(), 24000)
    await wait_until(lambda: bool(started), 10, "the reply never started")
    await wait_until(lambda: not engine.reply_active, 10, "the reply never ended")
    assert engine.counters.frames_suppressed == 0, "hands-free held the mic"
    engine.set_hands_free(False)
    engine.play(band_limited_noise(24000, 6).tobytes(), 24000)
    await wait_until(lambda: engine.counters.frames_suppressed >= 10, 10, "mic never held")
    engine.stop_capture()
