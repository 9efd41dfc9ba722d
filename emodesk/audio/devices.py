"""The device list and choosing a device by name, with fallback to the default.

PortAudio reads the device list once, when it initialises; a fresh list (after a device
was plugged or unplugged) needs a fresh `PyAudio` instance.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyaudio

from emodesk.audio.alsa_log import route_alsa_messages

Direction = Literal["input", "output"]


class AudioDeviceError(RuntimeError):
    """No usable audio device, or PortAudio could not start."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_rate: float
    default_low_input_latency_s: float
    default_low_output_latency_s: float
    is_default_input: bool
    is_default_output: bool


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """ALSA and JACK print probing noise straight to fd 2 while PortAudio starts."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_portaudio() -> pyaudio.PyAudio:
    """A fresh PortAudio instance (and so a fresh device list), without ALSA's noise."""
    route_alsa_messages()  # ALSA's chatter to the log from now on, not the terminal
    try:
        with _stderr_silenced():
            return pyaudio.PyAudio()
    except Exception as exc:  # PortAudio raises OSError or plain Exception
        raise AudioDeviceError(f"PortAudio could not start: {exc}") from exc


def _default_index(pa: pyaudio.PyAudio, direction: Direction) -> int | None:
    try:
        info = (
            pa.get_default_input_device_info()
            if direction == "input"
            else pa.get_default_output_device_info()
        )
    except OSError:  # no default device of that kind
        return None
    return int(info["index"])


def list_devices(pa: pyaudio.PyAudio) -> list[DeviceInfo]:
    default_in = _default_index(pa, "input")
    default_out = _default_index(pa, "output")
    devices = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        host_api = str(pa.get_host_api_info_by_index(int(d["hostApi"]))["name"])
        devices.append(
            DeviceInfo(
                index=i,
                name=str(d["name"]),
                host_api=host_api,
                max_input_channels=int(d["maxInputChannels"]),
                max_output_channels=int(d["maxOutputChannels"]),
                default_rate=float(d["defaultSampleRate"]),
                default_low_input_latency_s=float(d["defaultLowInputLatency"]),
                default_low_output_latency_s=float(d["defaultLowOutputLatency"]),
                is_default_input=i == default_in,
                is_default_output=i == default_out,
            )
        )
    return devices


def choose_device(pa: pyaudio.PyAudio, name: str | None, direction: Direction) -> DeviceInfo:
    """The device called `name` that can do `direction`, else the default one.

    Raises `AudioDeviceError` when there is no device for that direction at all.
    """
    devices = list_devices(pa)

    def usable(d: DeviceInfo) -> bool:
        return (d.max_input_channels if direction == "input" else d.max_output_channels) > 0

    if name:
        for d in devices:
            if d.name == name and usable(d):
                return d
    for d in devices:
        if (d.is_default_input if direction == "input" else d.is_default_output) and usable(d):
            return d
    for d in devices:
        if usable(d):
            return d
    raise AudioDeviceError(f"no {direction} audio device")


@dataclass(frozen=True, slots=True)
class StreamDevice:
    """Where a stream opens: the PortAudio device, and the sound server's source or sink
    to route it to (`pulse.routed`) when the choice is one of the server's own."""

    device: DeviceInfo
    server_device: str | None = None
    note: str | None = None  # the choice was not found: what is used instead, for the user


def choose_stream_device(
    pa: pyaudio.PyAudio, wanted: str | None, direction: Direction
) -> StreamDevice:
    """The device for `wanted`: a PortAudio device of that name, else a source or sink
    of the PulseAudio/PipeWire server (opened through ALSA's pulse plugin and routed to
    it), else the default one (with a note). Raises `AudioDeviceError` when there is no
    device for that direction at all."""
    device = choose_device(pa, wanted, direction)
    if not wanted or device.name == wanted:
        return StreamDevice(device)
    from emodesk.audio.pulse import list_server_devices

    server = list_server_devices()
    if server is not None and server.has(wanted, direction):
        plugin = choose_device(pa, "pulse", direction)  # the server's ALSA plugin
        return StreamDevice(plugin, server_device=wanted)
    return StreamDevice(
        device, note=f"{direction} device {wanted!r} not found; using {device.name!r}"
    )
