"""The output device lost while a reply plays, on a real audio stack (PortAudio -> ALSA
pulse plugin -> a PulseAudio server of this test's own, since it takes the sinks away).

With no sink left, PulseAudio has nowhere to move the engine's stream and ends it; the
ALSA stream stops and the engine's watchdog (`AudioEngine._watchdog`: a stream that is
no longer active, or has had no callback for `_STALL_S`) reports the output stopped and
`_recover` reopens it, with backoff, until a device is back. The reply held in the
playout buffer then goes on at the new device."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from emodesk.audio import AudioEngine, AudioSettings
from tests.support.pulse import SPEAKER_SINK_ARGS, PulseStack
from tests.support.signals import wait_until

pytestmark = [pytest.mark.audio_stack, pytest.mark.timeout(90)]

TONE_HZ = 330.0


def _sink_modules(stack: PulseStack) -> dict[str, int]:
    """The module index of each null sink, by sink name."""
    found: dict[str, int] = {}
    for line in stack.pactl("list", "short", "modules").splitlines():
        fields = line.split(maxsplit=2)
        if len(fields) == 3 and fields[1] == "module-null-sink":
            name = next(a for a in fields[2].split() if a.startswith("sink_name="))
            found[name.removeprefix("sink_name=")] = int(fields[0])
    return found


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.usefixtures("pulse")  # the binaries checked (a failure, never a skip)
async def test_the_output_device_lost_mid_reply_is_reported_reopened_and_the_reply_goes_on() -> (
    None
):
    loop = asyncio.get_running_loop()
    errors: list[tuple[str, str]] = []
    infos: list[tuple[str, str]] = []
    stack = await asyncio.to_thread(PulseStack().start)
    engine = AudioEngine(loop, AudioSettings(recovery_attempts=10))
    engine.set_listeners(
        on_error=lambda message, side: errors.append((message, side)),
        on_info=lambda message, side: infos.append((message, side)),
    )
    recorder = None
    try:
        engine.start()
        await asyncio.to_thread(stack.wait_until_sink_running, "spk")
        t = np.arange(24000 * 6) / 24000
        reply = (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
        engine.play(reply.tobytes(), 24000)
        # Half a second of the reply handed to the device: it is playing.
        await wait_until(lambda: engine.reply_ring.total_written >= 12000, 10, "never played")
        assert errors == [] and engine.counters.device_errors == 0

        # Every sink goes (the speaker unplugged, and nothing to fall back on).
        modules = _sink_modules(stack)
        await asyncio.to_thread(stack.unload_module, modules["mic"])
        await asyncio.to_thread(stack.unload_module, modules["spk"])
        await wait_until(lambda: bool(errors), 15, "the lost output was never reported")
        message, side = errors[0]
        assert side == "output"
        assert "output device" in message and "stopped; reopening" in message
        assert engine.reply_active, "the rest of the reply is still held to be played"

        # A speaker comes back: the engine reopens on it and the reply goes on there.
        sink = ("module-null-sink", "sink_name=spk", *SPEAKER_SINK_ARGS)
        await asyncio.to_thread(stack.load_module, *sink)
        await asyncio.to_thread(stack.pactl, "set-default-sink", "spk")
        await wait_until(lambda: bool(infos), 30, "the output was never reopened")
        assert infos == [("audio devices reopened", "output")], "recovery is information"
        await asyncio.to_thread(stack.wait_until_sink_running, "spk")
        recorder = await asyncio.to_thread(stack.start_recording, "spk.monitor", 24000)
        await wait_until(lambda: not engine.reply_active, 20, "the reply never finished")
        recorded = await asyncio.to_thread(stack.stop_recording, recorder)
        recorder = None

        loud = np.flatnonzero(np.abs(recorded.astype(int)) > 2000)
        assert loud.size >= 24000, f"only {loud.size / 24000:.2f} s of the reply after reopening"
        # The playout buffer plays the lag the outage left out faster (2.5 ms cut from
        # each 10 ms block, cross-faded): on a pure tone each cut jumps the phase by
        # 2.5 ms x 330 Hz = 0.825 cycles, so the tone is heard about 17.5 Hz off
        # (measured: 310-315 Hz) while it catches up. 25 Hz tells it from anything else.
        heard = recorded[loud[0] :][:12000]
        hz = _dominant_hz(heard, 24000)
        assert abs(hz - TONE_HZ) < 25, f"what played ({hz:.0f} Hz) is not the reply"
        assert engine.counters.device_errors == 1, "one loss, one recovery"
        assert not any("did not reopen" in m for m, _ in errors)
    finally:
        if recorder is not None:
            recorder.kill()
            recorder.wait(5)
        await asyncio.to_thread(engine.close)
        await asyncio.to_thread(stack.stop)
    assert engine._thread is not None and engine._thread.isFinished()
