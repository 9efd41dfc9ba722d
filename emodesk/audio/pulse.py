"""The sound server's own devices (PulseAudio, or PipeWire through its PulseAudio side),
and routing a PortAudio stream to one of them.

PortAudio sees only ALSA, where the whole sound server is one device ("pulse", often
"default" too). The server's sources and sinks, with the descriptions the desktop shows
(“Built-in Audio Analog Stereo”, “USB Headset”), come from libpulse through `pulsectl`.
A stream opened through ALSA's pulse plugin goes to the server's default source or sink
unless its client says otherwise; libpulse reads `PULSE_SOURCE` / `PULSE_SINK` from the
environment when the plugin opens the stream, so `routed()` sets the one wanted for
just that moment (under a lock: the environment is the process's).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Direction = Literal["input", "output"]
ENV_NAMES: dict[Direction, str] = {"input": "PULSE_SOURCE", "output": "PULSE_SINK"}
CONNECT_TIMEOUT_S = 2.0
_ROUTING = threading.RLock()  # reentrant: a source and a sink may be routed at once


@dataclass(frozen=True, slots=True)
class ServerDevice:
    name: str  # the server's name for it: what the settings keep
    description: str  # what the user sees
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class ServerDevices:
    sources: list[ServerDevice]  # microphones; monitors of sinks only when the default
    sinks: list[ServerDevice]

    def has(self, name: str, direction: Direction) -> bool:
        devices = self.sources if direction == "input" else self.sinks
        return any(d.name == name for d in devices)


def list_server_devices() -> ServerDevices | None:
    """The sound server's sources and sinks, defaults first; None when there is no
    PulseAudio/PipeWire server (or no libpulse). Never starts a server. Blocks for a
    few milliseconds: run it off the GUI thread."""
    try:
        import pulsectl

        pulse = pulsectl.Pulse("EmoDesk devices", connect=False)
    except Exception as exc:  # no libpulse on this machine
        log.info("no PulseAudio client library: %s", exc)
        return None
    try:
        pulse.connect(autospawn=False, timeout=CONNECT_TIMEOUT_S)
        info = pulse.server_info()
        sources = [
            ServerDevice(s.name, s.description, s.name == info.default_source_name)
            for s in pulse.source_list()
            # A sink's monitor hears the speaker, not the user: listed only as the default.
            if _is_real_source(s) or s.name == info.default_source_name
        ]
        sinks = [
            ServerDevice(s.name, s.description, s.name == info.default_sink_name)
            for s in pulse.sink_list()
        ]
    except Exception as exc:  # no server running, or it went away while asked
        log.info("no PulseAudio/PipeWire server: %s", exc)
        return None
    finally:
        pulse.close()

    def order(d: ServerDevice) -> tuple[bool, str]:
        return (not d.is_default, d.description.casefold())

    return ServerDevices(sorted(sources, key=order), sorted(sinks, key=order))


def _is_real_source(source: object) -> bool:
    """Not a sink's monitor (whose monitor_of_sink is PA_INVALID_INDEX)."""
    monitor_of = getattr(source, "monitor_of_sink", None)
    return monitor_of is None or monitor_of == 0xFFFFFFFF


@contextlib.contextmanager
def routed(server_device: str | None, direction: Direction) -> Iterator[None]:
    """While open, a stream opened through ALSA's pulse plugin goes to `server_device`
    (None: the server's default, or what the user's environment already says)."""
    if not server_device:
        yield
        return
    key = ENV_NAMES[direction]
    with _ROUTING:
        before = os.environ.get(key)
        os.environ[key] = server_device
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = before
