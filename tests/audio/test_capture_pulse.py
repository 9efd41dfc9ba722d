"""Capture on the real audio stack (PortAudio -> ALSA pulse plugin -> PulseAudio null
sinks): the input held open between turns, speech at the press arriving whole, the
pre-roll, overflow counting and the 16 kHz -> device-rate fallback."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyaudio
import pytest

from emodesk.audio import AudioEngine, AudioSettings
from emodesk.audio import engine as engine_module
from emodesk.audio.devices import open_portaudio
from tests.support.pulse import PulseStack
from tests.support.signals import band_limited_noise, best_match, wait_until

pytestmark = [pytest.mark.audio_stack, pytest.mark.timeout(60)]


@pytest.fixture
async def make_engine(pulse: PulseStack) -> AsyncIterator[Callable[..., AudioEngine]]:
    engines: list[AudioEngine] = []
    loop = asyncio.get_running_loop()

    def make(**settings: Any) -> AudioEngine:
        engine = AudioEngine(loop, AudioSettings(**settings))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await asyncio.to_thread(engine.close)


async def prepared(engine: AudioEngine) -> AudioEngine:
    """Prepare the input and wait until the device delivers (a fresh stream can pause)."""
    engine.prepare_capture()
    await wait_until(lambda: engine.mic_ring.total_written >= 3200, 10, "input never started")
    return engine


class SpeechIntoMic:
    """Speech played into the virtual mic, with what the mic really carried recorded
    from its monitor meanwhile: on a loaded machine paplay can underrun and put gaps
    into the mic's own signal. That is the test's doing, not the engine's, so captures
    are compared with the recording, not with the file."""

    def __init__(self, pulse: PulseStack, wav: Path) -> None:
        self._pulse = pulse
        self._wav = wav
        self._recorder: Any = None
        self.player: Any = None

    async def start(self) -> SpeechIntoMic:
        self._recorder = await asyncio.to_thread(self._pulse.start_recording, "mic.monitor", 16000)
        self.player = self._pulse.play_into_mic(self._wav, wait=False)
        return self

    async def played(self) -> None:
        await asyncio.wait_for(asyncio.to_thread(self.player.wait, 30), 35)

    async def captured(self, engine: AudioEngine, frames: list[bytes]) -> np.ndarray:
        """Wait until the speech has played and the capture holds all the mic carried,
        then stop capturing (also on failure); returns the speech as the mic carried it.
        Waiting on the content, not on a quiet tail, holds however far behind the device
        runs and whatever gaps a busy machine puts into the mic's signal."""
        try:
            await self.played()
            heard = await self.heard()

            def covered() -> bool:
                captured = np.frombuffer(b"".join(frames), dtype=np.int16)
                return captured.size >= heard.size and best_match(captured, heard)[0] > 0.9

            # On a timeout the caller's assertions say what the capture lacks.
            with contextlib.suppress(TimeoutError):
                await wait_until(covered, 15, "the speech never came through")
            return heard
        finally:
            engine.stop_capture()

    async def heard(self) -> np.ndarray:
        """The speech as the mic carried it (trimmed to 100 ms around the loud part)."""
        recording = await asyncio.to_thread(self._pulse.stop_recording, self._recorder)
        loud = np.flatnonzero(np.abs(recording) > 500)
        assert loud.size, "nothing reached the virtual mic"
        return recording[max(0, loud[0] - 1600) : loud[-1] + 1600]


def assert_whole_speech(
    frames: list[bytes], expected: np.ndarray, engine: AudioEngine | None = None
) -> None:
    """The captured frames hold the speech, its first 100 ms included and in place."""
    captured = np.frombuffer(b"".join(frames), dtype=np.int16)
    score, lag = best_match(captured, expected)
    assert score > 0.9, (
        f"captured audio does not match the speech (ncc {score:.2f} at {lag}; "
        f"{captured.size} samples captured for {expected.size}; "
        f"{engine.counters if engine is not None else ''})"
    )
    onset = int(np.flatnonzero(np.abs(expected) > 500)[0])
    head = expected[onset : onset + 1600]  # the first 100 ms of speech
    head_score, head_lag = best_match(captured, head)
    assert head_score > 0.9, f"the first 100 ms of speech are missing (ncc {head_score:.2f})"
    assert abs(head_lag - (lag + onset)) <= 16, "the speech's start is not where it belongs"


async def commands_done(engine: AudioEngine) -> None:
    """Wait until the engine thread has run every command posted so far (they run in order)."""
    done = threading.Event()
    engine._post(done.set)
    assert await asyncio.to_thread(done.wait, 10), "the engine thread is stuck"


async def test_prepared_input_stays_open_between_turns_and_closes_on_release(
    make_engine: Callable[..., AudioEngine],
) -> None:
    engine = await prepared(make_engine())
    frames: list[bytes] = []
    written = engine.mic_ring.total_written
    await wait_until(lambda: engine.mic_ring.total_written > written + 1600, 10, "meter starved")
    assert not frames and engine.counters.frames_delivered == 0, "nothing delivered unasked"
    for _ in range(2):  # two turns: the device is not closed in between
        engine.start_capture(frames.append)
        count = len(frames)
        await wait_until(lambda c=count: len(frames) >= c + 5, 10, "no frames in a turn")
        engine.stop_capture()
        await commands_done(engine)
        assert engine.input_open, "stop_capture closed a prepared input"
    engine.release_capture()
    await wait_until(lambda: not engine.input_open, 10, "release_capture left the input open")


async def test_without_prepare_stop_capture_closes_the_input(
    make_engine: Callable[..., AudioEngine],
) -> None:
    engine = make_engine()
    frames: list[bytes] = []
    engine.start_capture(frames.append)
    await wait_until(lambda: len(frames) >= 3, 10, "no frames")
    engine.stop_capture()
    await wait_until(lambda: not engine.input_open, 10, "stop_capture left the input open")


async def test_speech_starting_at_the_press_arrives_whole(
    pulse: PulseStack, speech_wav: Path, make_engine: Callable[..., AudioEngine]
) -> None:
    engine = await prepared(make_engine())
    frames: list[bytes] = []
    # The speech and the press start together; paplay needs a moment to connect, and the
    # pre-roll covers the other order.
    speech = await SpeechIntoMic(pulse, speech_wav).start()
    engine.start_capture(frames.append)
    assert_whole_speech(frames, await speech.captured(engine, frames), engine)


async def test_a_press_during_a_reply_delivers_speech_from_the_press(
    pulse: PulseStack, speech_wav: Path, make_engine: Callable[..., AudioEngine]
) -> None:
    """Half duplex holds the mic while a reply plays and for a tail after it. A barge-in
    (flush, then start_capture, as the controller does) leaves no reply and no echo, so
    the tail is cut: the speech that starts just after the press arrives whole, and no
    frame of the turn is held back."""
    engine = await prepared(make_engine(echo_mode="half_duplex", half_duplex_tail_ms=200))
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    engine.play(band_limited_noise(24000 * 5, 3).tobytes(), 24000)
    await wait_until(lambda: bool(started), 10, "the reply never started")
    await wait_until(lambda: engine.reply_active, 10, "the reply is not playing")
    frames: list[bytes] = []
    engine.flush()
    engine.start_capture(frames.append)
    # The speech starts after the press has taken effect: what came before it was the
    # reply's time, held back by design (no pre-roll in half duplex). Started together,
    # a quick paplay put the speech's quiet lead-in before the press in 2 of 6 runs.
    await commands_done(engine)
    speech = await SpeechIntoMic(pulse, speech_wav).start()
    heard = await speech.captured(engine, frames)
    assert not engine.reply_active
    assert engine.counters.frames_suppressed == 0, "frames of the barge-in turn were held back"
    assert_whole_speech(frames, heard, engine)


async def test_a_press_during_speech_delivers_the_audio_just_before_it(
    pulse: PulseStack, speech_wav: Path, make_engine: Callable[..., AudioEngine]
) -> None:
    # A long pre-roll, so the check does not depend on how soon the engine thread runs.
    engine = await prepared(make_engine(preroll_ms=1000))
    player = pulse.play_into_mic(speech_wav, wait=False)
    frames: list[bytes] = []
    try:
        await wait_until(lambda: engine.levels().input_rms_dbfs > -40, 10, "speech not heard")
        before_press = engine.mic_ring.latest(640).copy()  # the newest 40 ms so far
        engine.start_capture(frames.append)
        await wait_until(lambda: len(frames) >= 60, 10, "no frames after the press")
    finally:
        engine.stop_capture()
        await asyncio.to_thread(player.wait, 30)
    captured = np.frombuffer(b"".join(frames), dtype=np.int16)
    windows = np.lib.stride_tricks.sliding_window_view(captured, before_press.size)
    hits = np.flatnonzero((windows == before_press).all(axis=1))
    assert hits.size, "the audio from just before the press was not delivered"
    assert np.abs(before_press).max() > 0, "the check needs speech, not silence"


async def test_overflows_are_counted_when_the_engine_falls_behind(
    make_engine: Callable[..., AudioEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "_CAPTURE_RING_S", 0.25)  # 4000 samples at 16 kHz
    engine = await prepared(make_engine())
    frames: list[bytes] = []
    engine.start_capture(frames.append)
    await wait_until(lambda: len(frames) >= 5, 10, "no frames")
    assert engine.counters.overflows == 0
    # Starve the reader: the engine thread waits on `gate` while the device keeps writing.
    gate = threading.Event()
    blocked_at: list[int] = []
    ring = engine._capture_ring

    def starve() -> None:
        blocked_at.append(ring.total_written)
        gate.wait(10)

    engine._post(starve)  # the engine's own work queue: runs on its thread
    try:
        await wait_until(lambda: bool(blocked_at), 10, "the engine thread never blocked")
        lapped = blocked_at[0] + ring.capacity + 1600
        await wait_until(lambda: ring.total_written > lapped, 10, "the device stopped writing")
    finally:
        gate.set()
    await wait_until(lambda: engine.counters.overflows > 0, 10, "the overflow was not counted")
    count = len(frames)
    await wait_until(lambda: len(frames) >= count + 5, 10, "capture did not resume")
    engine.stop_capture()


class _NoSixteenKilohertz:
    """The real PortAudio, except that input at 16 kHz is refused the way PortAudio
    refuses a rate a device cannot do (ALSA's pulse plugin takes every rate, so a device
    that cannot is simulated at this one boundary)."""

    def __init__(self) -> None:
        self._pa = open_portaudio()
        self.refused: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pa, name)

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("input") and kwargs.get("rate") == 16000:
            self.refused.append(16000)
            raise OSError(pyaudio.paInvalidSampleRate, "Invalid sample rate")
        return self._pa.open(*args, **kwargs)


async def test_an_input_that_cannot_do_16k_opens_at_its_own_rate_and_resamples(
    pulse: PulseStack,
    speech_wav: Path,
    make_engine: Callable[..., AudioEngine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    portaudio = _NoSixteenKilohertz()
    monkeypatch.setattr(engine_module, "open_portaudio", lambda: portaudio)
    engine = await prepared(make_engine())
    assert portaudio.refused == [16000], "16 kHz was not tried first"
    assert engine.input_device is not None
    device_rate = round(engine.input_device.default_rate)
    assert device_rate != 16000 and engine.input_rate == device_rate
    frames: list[bytes] = []
    engine.start_capture(frames.append)
    speech = await SpeechIntoMic(pulse, speech_wav).start()
    expected = await speech.captured(engine, frames)
    frame_bytes = engine.settings.frame_samples * 2  # PCM16
    assert {len(f) for f in frames} == {frame_bytes}, "frames are 16 kHz whatever the device"
    captured = np.frombuffer(b"".join(frames), dtype=np.int16)
    score, lag = best_match(captured, expected)
    assert score > 0.9, (
        f"resampled capture does not match the speech (ncc {score:.2f} at {lag}; "
        f"{captured.size} samples captured for {expected.size}; {engine.counters})"
    )


async def test_missing_configured_devices_are_replaced_by_the_defaults_and_said(
    make_engine: Callable[..., AudioEngine],
) -> None:
    """A saved device that is gone (unplugged since) is not a failure: the default stands
    in, the user is told through on_info, and capture works."""
    engine = make_engine(input_device="No Such Microphone", output_device="No Such Speaker")
    infos: list[tuple[str, str]] = []
    errors: list[str] = []
    engine.set_listeners(
        on_error=lambda message, _side: errors.append(message),
        on_info=lambda message, side: infos.append((message, side)),
    )
    await prepared(engine)
    await wait_until(lambda: len(infos) == 2, 10, "the substitutions were not reported")
    assert sorted(infos, key=lambda info: info[1]) == [
        ("input device 'No Such Microphone' not found; using 'default'", "input"),
        ("output device 'No Such Speaker' not found; using 'default'", "output"),
    ]
    assert not errors
    assert engine.input_device is not None and engine.input_device.name == "default"
