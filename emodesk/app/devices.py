"""The audio devices' names for the settings dialog, listed off the GUI thread."""

from __future__ import annotations

import asyncio
import logging
import threading

log = logging.getLogger(__name__)

# Pa_Initialize and Pa_Terminate are not thread-safe: two listings at once crash.
_PORTAUDIO_LISTING = threading.Lock()


class DeviceNames:
    """(input names, output names): PortAudio is asked once (on an executor; it takes
    hundreds of milliseconds) and again only on `refresh`. A second dialog asking
    meanwhile waits for the first's answer."""

    def __init__(self) -> None:
        self._cache: tuple[list[str], list[str]] | None = None
        self._lock = asyncio.Lock()

    async def names(self, refresh: bool) -> tuple[list[str], list[str]]:
        async with self._lock:
            if self._cache is None or refresh:
                loop = asyncio.get_running_loop()
                self._cache = await loop.run_in_executor(None, list_device_names)
            return self._cache


def list_device_names() -> tuple[list[str], list[str]]:
    """(input names, output names) from a PortAudio opened for the purpose; empty lists
    when PortAudio cannot start (no sound system). Blocks: run it on an executor."""
    with _PORTAUDIO_LISTING:
        try:
            from emodesk.audio.devices import list_devices, open_portaudio

            pa = open_portaudio()
        except Exception as exc:
            log.warning("audio devices cannot be listed: %s", exc)
            return [], []
        try:
            devices = list_devices(pa)
        finally:
            pa.terminate()
    inputs = [d.name for d in devices if d.max_input_channels > 0]
    outputs = [d.name for d in devices if d.max_output_channels > 0]
    return inputs, outputs
