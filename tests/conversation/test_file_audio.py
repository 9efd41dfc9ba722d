"""The file-based audio port: real-time mic frames from a cursor, a simulated speaker that
records what was heard, and a flush that drops exactly what was not heard yet."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from emodesk.conversation.file_audio import FileAudio
from tests.conversation.fakes import ManualClock

pytestmark = pytest.mark.timeout(10)


async def test_capture_streams_frames_from_the_cursor_then_silence() -> None:
    mic = np.arange(1, 1001, dtype=np.int16)  # 1000 samples, no zeros
    audio = FileAudio(mic, frame_ms=20, pace=100.0)
    frames: list[bytes] = []
    audio.seek(680)
    audio.start_capture(frames.append)
    await audio.wait_position(680 + 3 * 320, limit_s=5)
    audio.stop_capture()
    got = np.frombuffer(b"".join(frames[:3]), dtype=np.int16)
    assert all(len(f) == 640 for f in frames)
    assert np.array_equal(got[:320], mic[680:1000])  # the rest of the file...
    assert not got[320:].any()  # ...then silence past its end


async def test_wait_position_is_bounded() -> None:
    audio = FileAudio(np.zeros(16000, np.int16), pace=1.0)
    with pytest.raises(TimeoutError):
        await audio.wait_position(16000, limit_s=0.05)  # capture never started


async def test_playback_start_is_reported_once_per_stretch_of_audio() -> None:
    clock = ManualClock()
    audio = FileAudio(np.zeros(10, np.int16), clock=clock)
    started: list[float] = []
    audio.set_listeners(on_playback_started=started.append)
    one_second = b"\x01\x00" * 24000
    audio.play(one_second, 24000)
    audio.play(one_second, 24000)
    await asyncio.sleep(0)
    assert started == [clock.now]
    clock.advance(2.5)  # both chunks played out: the next one starts a new stretch
    audio.play(one_second, 24000)
    await asyncio.sleep(0)
    assert started == [100.0, 102.5]


async def test_flush_keeps_only_what_was_heard() -> None:
    clock = ManualClock()
    audio = FileAudio(np.zeros(10, np.int16), clock=clock)
    audio.play(b"\x01\x00" * 24000, 24000)  # one second
    clock.advance(0.25)
    audio.flush()
    played, rate = audio.recorded()
    assert rate == 24000 and played.size == 6000
    assert not audio.playing


async def test_rejects_bad_frame_sizes_and_pace() -> None:
    with pytest.raises(ValueError):
        FileAudio(np.zeros(10, np.int16), frame_ms=100)
    with pytest.raises(ValueError):
        FileAudio(np.zeros(10, np.int16), pace=0)
