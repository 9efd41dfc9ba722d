"""The settings dialog's input level meter: a second audio engine on the chosen
microphone, apart from the conversation's own."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from emodesk.app.rings import RingView

if TYPE_CHECKING:
    from emodesk.audio.engine import AudioEngine


class LevelPreview:
    """`open(device)` opens `device` ("" = the default) and returns its samples;
    `open(None)` closes it. Calls run one at a time, so a quick change of device never
    leaves an engine open; closing joins the engine's thread (up to a second), off the
    GUI thread. Without `enabled` (the app runs on a scripted audio port) there is
    nothing to preview."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.engine: AudioEngine | None = None  # the open preview engine
        self._lock = asyncio.Lock()

    async def open(self, device: str | None) -> RingView | None:
        async with self._lock:
            await self._close()
            if device is None or not self.enabled:
                return None
            from emodesk.audio.engine import AudioEngine
            from emodesk.audio.settings import AudioSettings

            engine = AudioEngine(
                asyncio.get_running_loop(), AudioSettings(input_device=device or None)
            )
            engine.prepare_capture()  # the mic fills mic_ring, which the meter reads
            self.engine = engine
            return RingView(engine, "mic_ring")

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await asyncio.get_running_loop().run_in_executor(None, engine.close, 1.0)
