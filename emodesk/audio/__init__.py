"""PyAudio streams on a QThread: capture, playout, devices, echo cancellation.

The only package that imports pyaudio. `AudioEngine` implements the controller's
`AudioPort`; `list_devices` backs `emodesk devices`.
"""

from emodesk.audio.devices import (
    AudioDeviceError,
    DeviceInfo,
    choose_device,
    list_devices,
    open_portaudio,
)
from emodesk.audio.engine import AudioCounters, AudioEngine, AudioLevels
from emodesk.audio.settings import AudioSettings, AudioSettingsError, EchoMode

__all__ = [
    "AudioCounters",
    "AudioDeviceError",
    "AudioEngine",
    "AudioLevels",
    "AudioSettings",
    "AudioSettingsError",
    "DeviceInfo",
    "EchoMode",
    "choose_device",
    "list_devices",
    "open_portaudio",
]
