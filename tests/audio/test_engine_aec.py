"""The engine's own echo cancellation path with a delayed echo, on the real audio stack.

`tests/audio/test_processing.py` feeds `EchoCanceller` a reference aligned sample for
sample with the echo. Here the engine does what it does in use: its output callback
records every block it hands the device as the far end (both streams at 16 kHz here, so
it is not resampled), its engine thread keeps no more of it than the capture and output
latencies plus a margin ahead of the captured audio (`AudioEngine._far_lead_samples`,
`EchoCanceller.trim_far`) and pairs it with each captured frame. Real PortAudio streams
on the private PulseAudio null sinks carry the audio and set the timing.

The room is the one thing simulated: a wrapper at the device boundary (the engine's two
PortAudio callbacks) adds to the captured block the echo of what the output callback
handed the device `delay_ms` earlier, through a decaying 50 ms impulse response at -6 dB.
The microphone sink itself is silent, so everything captured is echo, and the engine's
frames hold only what it failed to cancel. The two streams run on the sound server's one
clock, so the echo keeps its delay, give or take a block of callback jitter, except where
one stream pauses (the rig then lines the two up again and AEC3 re-converges).

The delays are physical ones: on this stack PortAudio reports 40 ms of input and 20 ms of
output latency, so a real echo comes back no sooner than 60 ms after the callback that
handed its sound over; 80 ms is a 20 ms room on top, 140 ms an 80 ms one, 300 ms a
Bluetooth headset's. The engine keeps the reference at most two output blocks (20 ms)
behind the capture, so every one of them reaches AEC3 before its echo; with the lag at
the stream latencies plus 80 ms (140 ms), the 80 ms echo was cancelled in some runs
(61-72 dB) and not at all in others (0-2 dB), depending on how long the capture stream
took to start while playback ran.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emodesk.audio import AudioEngine, AudioSettings
from emodesk.dsp.levels import rms_dbfs
from tests.support.pulse import PulseStack, read_wav
from tests.support.signals import wait_until

pytestmark = [pytest.mark.audio_stack, pytest.mark.timeout(90)]

RATE = 16000  # both streams at 16 kHz: the echo needs no resampling of its own
# The floor: steady, the engine took 61-72 dB off these echoes (half-second windows,
# 2026-11-30); a reference handed to AEC3 after its echo (an echo sooner than the engine
# allows for) leaves it nearly whole, 0-3 dB. 10 dB tells the two apart.
FLOOR_DB = 10.0
WINDOW_S = 0.5


def _room(taps: int = 800, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ir = rng.standard_normal(taps) * np.exp(-np.arange(taps) / 160)
    ir[0] = 3.0
    return ir / np.sqrt(np.sum(ir**2)) * 10 ** (-6 / 20)


class DelayedEcho:
    """The room between the engine's speaker and its microphone, at the callbacks."""

    def __init__(self, engine: AudioEngine, delay_ms: int) -> None:
        self.delay = RATE * delay_ms // 1000
        self.ir = _room()
        self.played = np.zeros(0, dtype=np.int16)  # every sample handed to the device
        self.lock = threading.Lock()
        self.position: int | None = None  # the captured stream's place in `played`
        self.resyncs = 0
        self.injected: list[tuple[float, np.ndarray]] = []  # (time, echo added)
        output: Callable[..., Any] = engine._output_callback
        capture: Callable[..., Any] = engine._input_callback

        def output_callback(in_data: bytes | None, frames: int, t: Any, status: int) -> Any:
            data, flag = output(in_data, frames, t, status)
            with self.lock:
                self.played = np.concatenate((self.played, np.frombuffer(data, np.int16)))
            return data, flag

        def input_callback(in_data: bytes | None, frames: int, t: Any, status: int) -> Any:
            near = np.frombuffer(in_data or bytes(2 * frames), np.int16).astype(float)
            with self.lock:
                # The two streams' "now" lined up at the first block, and again only if
                # one stream paused while the other ran on (a null sink's pause for a
                # fresh stream, an underrun on a loaded machine): 200 ms out either way.
                ahead = 0 if self.position is None else self.position - self.played.size
                if self.position is None or abs(ahead) > RATE // 5:
                    self.position = self.played.size
                    self.resyncs += 1
                end = self.position + frames - self.delay
                start = end - frames - self.ir.size + 1
                source = np.zeros(end - start)
                have = self.played[max(0, start) : max(0, min(end, self.played.size))]
                offset = max(0, -start)
                source[offset : offset + have.size] = have
                self.position += frames
            echo = np.convolve(source, self.ir, mode="valid")[:frames]
            self.injected.append((time.monotonic(), np.clip(echo, -32768, 32767).astype(np.int16)))
            mixed = np.clip(near + echo, -32768, 32767).astype(np.int16)
            return capture(mixed.tobytes(), frames, t, status)

        # Bound before the streams open: PortAudio takes the engine's attributes then.
        engine._output_callback = output_callback  # type: ignore[method-assign]
        engine._input_callback = input_callback  # type: ignore[method-assign]


@pytest.mark.parametrize("delay_ms", [60, 80, 140, 300])
async def test_the_engine_cancels_a_delayed_echo_through_its_own_alignment(
    pulse: PulseStack, speech_wav: Path, delay_ms: int
) -> None:
    loop = asyncio.get_running_loop()
    engine = AudioEngine(
        loop,
        AudioSettings(echo_mode="full_duplex_aec", output_device_rate=RATE, input_device_rate=RATE),
    )
    room = DelayedEcho(engine, delay_ms)
    cleaned: list[tuple[float, bytes]] = []
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    speech, rate = read_wav(speech_wav)
    assert rate == 22050
    try:
        engine.start_capture(lambda frame: cleaned.append((time.monotonic(), frame)))
        await wait_until(lambda: len(cleaned) >= 25, 10, "no frames from the microphone")
        reply = np.tile(speech, 4)  # about 8 s: AEC3 converges within the first half
        engine.play(reply.tobytes(), rate)
        await wait_until(lambda: bool(started), 10, "the reply never started")
        await wait_until(lambda: not engine.reply_active, 30, "the reply never finished")
        engine.stop_capture()
    finally:
        await asyncio.to_thread(engine.close)

    assert engine.output_rate == RATE and engine.input_rate == RATE
    assert engine.counters.overflows == 0, "captured audio was lost: the test says nothing"
    # The second half of the reply, after convergence, in half-second windows timed on
    # arrival at both ends; the median window, so that a stream's pause on a loaded
    # machine (and AEC3 converging again after it) does not decide the test.
    span = reply.size / rate
    windows: list[float] = []
    t = started[0] + span / 2
    while t + WINDOW_S <= started[0] + span - 0.2:
        echo = [e for at, e in room.injected if t <= at < t + WINDOW_S]
        out = [np.frombuffer(f, np.int16) for at, f in cleaned if t <= at < t + WINDOW_S]
        if echo and out:
            loud = rms_dbfs(np.concatenate(echo))
            assert loud > -40, "the echo never reached the microphone"
            windows.append(loud - rms_dbfs(np.concatenate(out)))
        t += WINDOW_S
    assert len(windows) >= 6, f"only {len(windows)} windows of echo and frames to judge"
    reduction = float(np.median(windows))
    assert reduction > FLOOR_DB, (
        f"the engine took only {reduction:.1f} dB (median of {len(windows)} windows: "
        f"{[round(w) for w in windows]}) off an echo {delay_ms} ms behind the callback "
        f"(floor {FLOOR_DB} dB; {room.resyncs - 1} stream pauses)"
    )
