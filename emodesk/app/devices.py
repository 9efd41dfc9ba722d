"""The audio devices for the settings dialog, listed off the GUI thread: the sound
server's sources and sinks by their descriptions (PulseAudio, or PipeWire's PulseAudio
side), else PortAudio's device names where there is no such server."""

from __future__ import annotations

import asyncio
import logging
import threading

from emodesk.ui.services import DeviceChoice

log = logging.getLogger(__name__)

# Pa_Initialize and Pa_Terminate are not thread-safe: two listings at once crash.
_PORTAUDIO_LISTING = threading.Lock()


class DeviceNames:
    """(inputs, outputs): the sound server or PortAudio is asked once (on an executor; it takes
    hundreds of milliseconds) and again only on `refresh`. A second dialog asking
    meanwhile waits for the first's answer."""

    def __init__(self) -> None:
        self._cache: tuple[list[DeviceChoice], list[DeviceChoice]] | None = None
        self._lock = asyncio.Lock()

    async def names(self, refresh: bool) -> tuple[list[DeviceChoice], list[DeviceChoice]]:
        async with self._lock:
            if self._cache is None or refresh:
                loop = asyncio.get_running_loop()
                self._cache = await loop.run_in_executor(None, list_device_names)
            return self._cache


def list_device_names() -> tuple[list[DeviceChoice], list[DeviceChoice]]:
    """(inputs, outputs), the defaults marked: the sound server's own devices when there
    is one, else PortAudio's from an instance opened for the purpose; empty lists when
    neither answers (no sound system). Blocks: run it on an executor."""
    from emodesk.audio.pulse import list_server_devices

    server = list_server_devices()
    if server is not None:
        return (
            [DeviceChoice(d.name, d.description, d.is_default) for d in server.sources],
            [DeviceChoice(d.name, d.description, d.is_default) for d in server.sinks],
        )
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
    inputs = [
        DeviceChoice(d.name, d.name, d.is_default_input)
        for d in devices
        if d.max_input_channels > 0
    ]
    outputs = [
        DeviceChoice(d.name, d.name, d.is_default_output)
        for d in devices
        if d.max_output_channels > 0
    ]
    return inputs, outputs
