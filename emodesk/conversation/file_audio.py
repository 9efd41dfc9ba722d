"""An `AudioPort` made of files, for `emodesk converse` without a sound card.

The "microphone" reads a 16 kHz mono PCM16 buffer in real-time frames from a cursor
(silence past its end); the "speaker" keeps the reply audio it is given on a simulated
playout clock, so a flush drops exactly what had not been "heard" yet, and reports
playback start the way a device would. `pace` > 1 runs both clocks faster (tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from emodesk.core.devices import DeviceSide
from emodesk.core.pcm import MIC_RATE, REPLY_RATE

SPEAKER_RATE = REPLY_RATE  # the "device" rate; replies at other rates are resampled


class FileAudio:
    def __init__(
        self,
        mic: npt.NDArray[np.int16],
        *,
        frame_ms: int = 20,
        pace: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 10 <= frame_ms <= 40:
            raise ValueError(f"frame_ms must be within 10-40 ms, got {frame_ms}")
        if not pace > 0:
            raise ValueError(f"pace must be positive, got {pace}")
        self._mic = np.ascontiguousarray(np.asarray(mic, dtype=np.int16).reshape(-1))
        self._frame = MIC_RATE * frame_ms // 1000
        self._pace = pace
        self._clock = clock
        self._cursor = 0
        self._pump: asyncio.Task[None] | None = None
        self._position_changed = asyncio.Event()
        self._on_playback_started: Callable[[float], None] | None = None
        self._on_error: Callable[[str, DeviceSide], None] | None = None
        # Playback: the chunks "heard" so far and when the queued audio runs out.
        self._out_rate = SPEAKER_RATE
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._play_end = 0.0
        self.resampled_chunks = 0  # reply audio at another rate, resampled to the speaker's
        self.flushes = 0
        self.prepared = False

    # -- the microphone --------------------------------------------------------------

    @property
    def position(self) -> int:
        """The next mic sample to be sent."""
        return self._cursor

    @property
    def samples(self) -> int:
        return int(self._mic.size)

    def seek(self, sample: int) -> None:
        self._cursor = max(0, min(int(sample), self.samples))

    async def wait_position(self, sample: int, limit_s: float) -> None:
        """Wait until capture has sent everything before `sample`."""
        async with asyncio.timeout(limit_s):
            while self._cursor < sample:
                self._position_changed.clear()
                await self._position_changed.wait()

    def prepare_capture(self) -> None:
        # A file needs no warm-up and has no audio "before the press": only remembered.
        self.prepared = True

    def release_capture(self) -> None:
        self.prepared = False

    def start_capture(self, on_frame: Callable[[bytes], None]) -> None:
        self.stop_capture()
        self._pump = asyncio.get_running_loop().create_task(self._run_mic(on_frame))

    def stop_capture(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()

    def set_hands_free(self, enabled: bool) -> None:
        """A file has no echo to cancel."""

    async def _run_mic(self, on_frame: Callable[[bytes], None]) -> None:
        period = self._frame / MIC_RATE / self._pace
        next_at = self._clock()
        while True:
            start = self._cursor
            frame = self._mic[start : start + self._frame]
            if frame.size < self._frame:  # past the end: silence, as a quiet room
                frame = np.concatenate([frame, np.zeros(self._frame - frame.size, np.int16)])
            self._cursor = start + self._frame
            self._position_changed.set()
            on_frame(frame.tobytes())
            # An absolute schedule: a late wake-up does not slow the stream down.
            next_at += period
            await asyncio.sleep(max(0.0, next_at - self._clock()))

    # -- the speaker -----------------------------------------------------------------

    def play(self, pcm: bytes, rate: int) -> None:
        if not pcm:
            return
        if rate != self._out_rate:
            from emodesk.dsp.resample import resample

            samples = np.frombuffer(pcm, dtype=np.int16)
            pcm = resample(samples, rate, self._out_rate).tobytes()
            self.resampled_chunks += 1
        now = self._clock()
        idle = now >= self._play_end
        if idle:
            self._play_end = now
        self._play_end += len(pcm) / 2 / self._out_rate / self._pace
        self._out.append(bytes(pcm))
        self._out_bytes += len(pcm)
        if idle and self._on_playback_started is not None:
            callback = self._on_playback_started
            asyncio.get_running_loop().call_soon(callback, now)

    def flush(self) -> float:
        self.flushes += 1
        now = self._clock()
        if now >= self._play_end:
            return 0.0
        unheard_s = (self._play_end - now) * self._pace
        unheard = round(unheard_s * self._out_rate) * 2
        keep = max(0, self._out_bytes - unheard)
        joined = b"".join(self._out)[:keep]
        self._out = [joined] if joined else []
        self._out_bytes = len(joined)
        self._play_end = now
        return unheard_s

    @property
    def playing(self) -> bool:
        return self._clock() < self._play_end

    async def wait_played(self, limit_s: float) -> None:
        """Wait until the queued reply audio has been "heard"."""
        async with asyncio.timeout(limit_s):
            # The end moves while replies are queued, so re-read it after each wait.
            while (left := self._play_end - self._clock()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(min(left, 0.05))

    def recorded(self) -> tuple[npt.NDArray[np.int16], int]:
        """Every reply sample that played, in order, and its rate (24000 if none)."""
        data = np.frombuffer(b"".join(self._out), dtype=np.int16).copy()
        return data, self._out_rate

    def set_listeners(
        self,
        on_playback_started: Callable[[float], None] | None = None,
        on_error: Callable[[str, DeviceSide], None] | None = None,
        on_info: Callable[[str, DeviceSide], None] | None = None,
    ) -> None:
        # A file neither fails like a device nor gets substituted: on_info never fires.
        self._on_playback_started = on_playback_started
        self._on_error = on_error

    def close(self) -> None:
        self.stop_capture()
        with contextlib.suppress(RuntimeError):
            self._position_changed.set()
