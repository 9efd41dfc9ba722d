"""Replies straight to the sound server (`emodesk.audio.server_output`) on the real
stack: a private PulseAudio with null sinks, the speaker heard at its monitor.

How soon a reply sounds is `make bench`'s (`bench_latency`); here: that what is written
is heard whole and in order however it arrives, that the engine falls back to PortAudio
when the server's own stream cannot open, and that a missing server or sink is a clear
error, not a hang."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from emodesk.audio import AudioEngine
from emodesk.audio.devices import AudioDeviceError
from emodesk.audio.server_output import CONNECT_TIMEOUT_S, ServerOutput
from tests.support.pulse import PulseStack
from tests.support.signals import (
    assert_heard_whole_and_in_order,
    band_limited_noise,
    best_match,
    wait_until,
)

pytestmark = [pytest.mark.audio_stack, pytest.mark.timeout(60)]

RATE = 24000


def _loud_span(recorded: np.ndarray) -> tuple[int, int]:
    loud = np.flatnonzero(np.abs(recorded.astype(int)) > 300)
    assert loud.size, "nothing was heard"
    return int(loud[0]), int(loud[-1]) + 1


async def _paced(engine: AudioEngine, reply: np.ndarray, chunk: int) -> None:
    """Hand `reply` to the engine in chunks of `chunk` samples at real time, as the
    Live API's audio arrives."""
    t0 = time.monotonic()
    for i in range(0, reply.size, chunk):
        await asyncio.sleep(max(0.0, t0 + i / RATE - time.monotonic()))
        engine.play(reply[i : i + chunk].tobytes(), RATE)


async def test_a_reply_arriving_at_real_time_is_heard_whole_and_in_order(
    pulse: PulseStack, make_engine: Callable[..., AudioEngine]
) -> None:
    """40 ms chunks at real time, the last a part block: the server's queue is topped up
    as they come, every segment is heard where it belongs and the tail is not lost."""
    engine = make_engine()
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    await pulse.engine_output_running(engine)
    segments = [band_limited_noise(6000, seed) for seed in range(4)]
    reply = np.concatenate([*segments, band_limited_noise(77, 9)])  # 1.003 s
    recorder = await asyncio.to_thread(pulse.start_recording, "spk.monitor", RATE)
    await _paced(engine, reply, 960)
    await wait_until(lambda: bool(started), 10, "playback never started")
    assert engine.server_output, "the reply did not go straight to the sound server"
    await wait_until(lambda: not engine.reply_active, 10, "playback never finished")
    recorded = await asyncio.to_thread(pulse.stop_recording, recorder)

    assert_heard_whole_and_in_order(recorded, segments)
    first, last = _loud_span(recorded)
    assert abs((last - first) - reply.size) <= 24, (
        f"heard {(last - first) / RATE:.4f} s of a {reply.size / RATE:.4f} s reply"
    )


async def test_the_engine_plays_through_portaudio_when_the_servers_stream_cannot_open(
    pulse: PulseStack, make_engine: Callable[..., AudioEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_args: Any, **_kwargs: Any) -> None:
        raise AudioDeviceError("the sound server refused a stream: test")

    monkeypatch.setattr(ServerOutput, "__init__", refused)
    engine = make_engine()
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    await pulse.engine_output_running(engine)
    reply = band_limited_noise(12000, 3)
    recorder = await asyncio.to_thread(pulse.start_recording, "spk.monitor", RATE)
    engine.play(reply.tobytes(), RATE)
    await wait_until(lambda: bool(started), 10, "playback never started")
    assert not engine.server_output
    await wait_until(lambda: not engine.reply_active, 10, "playback never finished")
    recorded = await asyncio.to_thread(pulse.stop_recording, recorder)

    # Heard: a starved machine can hold PortAudio's callback past its buffer and leave
    # a gap (ncc 0.82 once, in `make test` beside an hour's soak), which is PortAudio's
    # weakness, not the fallback's; a reply not played at all scores about 0.
    score, _ = best_match(recorded, reply)
    assert score > 0.5, f"the reply was not heard through PortAudio (ncc {score:.2f})"
    assert engine.counters.device_errors == 0


async def test_server_output_off_in_the_settings_uses_portaudio(
    make_engine: Callable[..., AudioEngine],
) -> None:
    engine = make_engine(server_output=False)
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    engine.play(band_limited_noise(2400, 4).tobytes(), RATE)
    await wait_until(lambda: bool(started), 10, "playback never started")
    assert not engine.server_output


def test_no_sound_server_is_a_clear_error_not_a_hang(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path / 'no-server'}")
    t0 = time.monotonic()
    with pytest.raises(AudioDeviceError, match="sound server"):
        ServerOutput(RATE, lambda *_: None)
    assert time.monotonic() - t0 < CONNECT_TIMEOUT_S + 1


def test_a_sink_the_server_does_not_have_is_a_clear_error(pulse: PulseStack) -> None:
    with pytest.raises(AudioDeviceError, match="no-such-sink"):
        ServerOutput(RATE, lambda *_: None, sink="no-such-sink")


def test_a_block_written_to_an_idle_output_is_heard_and_nothing_else(pulse: PulseStack) -> None:
    """Idle, `fill` has nothing and nothing is written; a kick writes the reply at the
    server's read position, whole, and the stream goes quiet again after it."""
    reply = band_limited_noise(4800, 5)
    pending = [reply[i : i + 240] for i in range(0, reply.size, 240)]

    def fill(frames: int, sounds_at: float, queued_s: float) -> np.ndarray | None:
        if not pending or not playing:
            return None
        return pending.pop(0)

    playing = False
    output = ServerOutput(RATE, fill)
    try:
        pulse.wait_until_sink_latency_below(0.1, "spk")
        recorder = pulse.start_recording("spk.monitor", RATE)
        time.sleep(0.5)
        playing = True
        while pending:
            output.kick()
            time.sleep(0.005)
        time.sleep(0.5)
        recorded = pulse.stop_recording(recorder)
    finally:
        output.close()

    score, _ = best_match(recorded, reply)
    assert score > 0.95, f"speaker output differs from the reply (ncc {score:.2f})"
    first, last = _loud_span(recorded)
    assert abs((last - first) - reply.size) <= 24, "more or less than the reply was heard"
