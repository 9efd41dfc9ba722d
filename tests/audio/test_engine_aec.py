"""The engine's own echo cancellation path with a delayed echo, on the real audio stack.

`tests/audio/test_processing.py` feeds `EchoCanceller` a reference aligned sample for
sample with the echo. Here the engine does what it does in use: its output records every
block it hands the device as the far end (both streams at 16 kHz here, so it is not
resampled), and its engine thread pairs each captured frame with the reference that
sounded 10 ms after it was captured (`emodesk.audio.alignment`): by PortAudio's DAC and
ADC times, or, with the reply going straight to the sound server (`server_output`), by
when the server says a block sounds and the ADC time on the monotonic clock. Real
streams on the private PulseAudio null sinks carry the audio and set the timing.

The room is the one thing simulated: a wrapper at the device boundary (the engine's
output callback or server fill, and its input callback) adds to each captured block the
echo of what the speaker sounded `delay_ms` earlier, on the monotonic clock (a block
sounds at its DAC time, or when the server says, and is captured at its ADC time),
through a decaying 50 ms impulse response at -6 dB. The
microphone sink itself is silent, so everything captured is echo, and the engine's
frames hold only what it failed to cancel. A stream that pauses or catches up in a burst
on a loaded machine moves the echo as it would in a real room.

On this stack a block sounds about 30 ms after its output callback and is captured about
20 ms before its input callback, so even a 0 ms room (speaker against the microphone)
echoes 50 ms after the callback that handed its sound over; 20 ms is a desk, 80 ms a
large room, 250 ms about what a Bluetooth headset adds; every one of them reaches AEC3
after its reference. With the reference lagging the capture by the stream latencies
plus 80 ms (140 ms, before 2026-11-30) the 0 ms room was not cancelled (0.2 dB); kept
within 10-50 ms by how much of it was queued (until 2026-12-01) it failed now and then
(7 dB once), its echo at the band's edge.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr

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
    """The room between the engine's speaker and its microphone, at the callbacks, on
    the monotonic clock: a sample handed to PortAudio sounds at its DAC time
    (`output_buffer_dac_time` plus its place in the block), one handed to the sound
    server when it says (`sounds_at`), and the captured block holds, at each sample's
    ADC time, what sounded `delay_ms` earlier through the room. PortAudio's times are
    moved to the monotonic clock by the least offset seen between the two (the one a
    callback's wait for the GIL did not add to). So a stream that pauses or catches up
    in a burst moves the echo as it would in a real room, and where nothing was playing
    the echo is silence."""

    SPAN_S = 120  # the speaker's timeline kept, from the first output callback

    def __init__(self, engine: AudioEngine, delay_ms: int, output_rate: int = RATE) -> None:
        self.delay_s = delay_ms / 1000
        self.ir = _room()
        self.out_rate = output_rate
        self.speaker = np.zeros(output_rate * self.SPAN_S)  # what sounded, by PortAudio time
        self.t0: float | None = None  # monotonic time of `speaker[0]`
        self.offset = math.inf  # monotonic time less PortAudio's, the least seen
        self.lock = threading.Lock()
        self.injected: list[tuple[float, np.ndarray]] = []  # (time, echo added)
        self.adc_behind_callback: list[float] = []
        output: Callable[..., Any] = engine._output_callback
        server_fill: Callable[..., Any] = engine._server_fill
        capture: Callable[..., Any] = engine._input_callback

        def output_callback(in_data: bytes | None, frames: int, t: Any, status: int) -> Any:
            data, flag = output(in_data, frames, t, status)
            self.sounded_at(
                np.frombuffer(data, np.int16), self.monotonic(t, "output_buffer_dac_time")
            )
            return data, flag

        def fill(frames: int, sounds_at: float, queued_s: float) -> Any:
            block = server_fill(frames, sounds_at, queued_s)
            if block is not None and block.size:
                self.sounded_at(block, sounds_at)
            return block

        def input_callback(in_data: bytes | None, frames: int, t: Any, status: int) -> Any:
            near = np.frombuffer(in_data or bytes(2 * frames), np.int16).astype(float)
            echo = np.zeros(frames)
            adc = self.monotonic(t, "input_buffer_adc_time")
            with self.lock:
                self.adc_behind_callback.append(t["current_time"] - t["input_buffer_adc_time"])
                if self.t0 is not None:
                    end = round((adc - self.delay_s - self.t0) * RATE)
                    end += frames
                    start = end - frames - self.ir.size + 1
                    source = self.sounded(start, end)
                    if source is not None:
                        echo = np.convolve(source, self.ir, mode="valid")[:frames]
            self.injected.append((time.monotonic(), np.clip(echo, -32768, 32767).astype(np.int16)))
            mixed = np.clip(near + echo, -32768, 32767).astype(np.int16)
            return capture(mixed.tobytes(), frames, t, status)

        # Bound before the streams open: PortAudio and the server take them then.
        self._bind(engine, output_callback, fill, input_callback)

    def monotonic(self, t: Any, key: str) -> float:
        """PortAudio's time `t[key]` on the monotonic clock."""
        with self.lock:
            self.offset = min(self.offset, time.monotonic() - t["current_time"])
            return float(t[key]) + self.offset

    def sounded_at(self, block: np.ndarray, at_s: float) -> None:
        with self.lock:
            if self.t0 is None:
                self.t0 = at_s
            at = round((at_s - self.t0) * self.out_rate)
            if at >= 0 and at + block.size <= self.speaker.size:
                self.speaker[at : at + block.size] = block

    def sounded(self, start: int, end: int) -> np.ndarray | None:
        """What sounded over 16 kHz samples [start, end) of the timeline, None where
        that is outside it. At another output rate, the timeline is resampled from a
        point both rates' grids share (every 1/8000 s for 24 kHz), with margins that
        are cut off again, so the echo is the same filter of the sound in every block."""
        if self.out_rate == RATE:
            return self.speaker[start:end] if start >= 0 and end <= self.speaker.size else None
        step = RATE // math.gcd(RATE, self.out_rate)  # 16 kHz samples between shared points
        first = (start - 64) // step * step
        last = -(-(end + 64) // step) * step
        lo, hi = first * self.out_rate // RATE, last * self.out_rate // RATE
        if lo < 0 or hi > self.speaker.size:
            return None
        wide = soxr.resample(self.speaker[lo:hi], self.out_rate, RATE, quality="HQ")
        return np.asarray(wide[start - first : end - first])

    @staticmethod
    def _bind(
        engine: AudioEngine,
        output: Callable[..., Any],
        fill: Callable[..., Any],
        capture: Callable[..., Any],
    ) -> None:
        engine._output_callback = output  # type: ignore[method-assign]
        engine._server_fill = fill  # type: ignore[method-assign]
        engine._input_callback = capture  # type: ignore[method-assign]


# (delay_ms, out_rate, server_output): the sound server's own stream, and PortAudio's.
CASES = [
    (0, RATE, True),
    (20, RATE, True),
    (80, RATE, True),
    (250, RATE, True),
    (0, 24000, True),
    (80, 24000, True),
    (0, RATE, False),
    (80, 24000, False),
]


@pytest.mark.parametrize(
    ("delay_ms", "out_rate", "server_output"),
    CASES,
    ids=[f"{d}ms-{r}-{'server' if s else 'portaudio'}" for d, r, s in CASES],
)
async def test_the_engine_cancels_a_delayed_echo_through_its_own_alignment(
    pulse: PulseStack, speech_wav: Path, delay_ms: int, out_rate: int, server_output: bool
) -> None:
    """At 24 kHz out (the reply's own rate, where a device takes it) the reference is
    resampled to 16 kHz before it is paired. Through PortAudio too (`server_output`
    off, or no sound server)."""
    loop = asyncio.get_running_loop()
    engine = AudioEngine(
        loop,
        AudioSettings(
            echo_mode="full_duplex_aec",
            output_device_rate=out_rate,
            input_device_rate=RATE,
            server_output=server_output,
        ),
    )
    room = DelayedEcho(engine, delay_ms, out_rate)
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
        assert engine.server_output == server_output
        await wait_until(lambda: not engine.reply_active, 30, "the reply never finished")
        engine.stop_capture()
    finally:
        await asyncio.to_thread(engine.close)

    assert engine.output_rate == out_rate and engine.input_rate == RATE
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
            if loud > -40:  # quieter: a pause in the reply (or its sound late), no echo
                windows.append(loud - rms_dbfs(np.concatenate(out)))
        t += WINDOW_S
    assert len(windows) >= 6, f"only {len(windows)} windows with echo and frames to judge"
    reduction = float(np.median(windows))
    assert reduction > FLOOR_DB, (
        f"the engine took only {reduction:.1f} dB (median of {len(windows)} windows: "
        f"{[round(w) for w in windows]}) off an echo {delay_ms} ms behind the sound "
        f"(floor {FLOOR_DB} dB)"
    )
