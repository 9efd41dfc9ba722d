"""What the audio engine is configured with. Plain data, saved with the app's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from emodesk.core.pcm import MIC_RATE

EchoMode = Literal["half_duplex", "full_duplex_aec"]


class AudioSettingsError(ValueError):
    """An audio setting is out of range."""


@dataclass(frozen=True, slots=True)
class AudioSettings:
    # Device names as `emodesk devices` lists them; None (or a name no longer present)
    # means the system default.
    input_device: str | None = None
    output_device: str | None = None
    # Length of one captured frame handed to the loop. 10 ms: the server's detector sees
    # voice onset and the end of speech a frame sooner (barge-in 20.9 ms against 31.9
    # with 20 ms frames), for twice the packets.
    frame_ms: int = 10
    # The most a reply waits before playback starts, to absorb network jitter: the
    # playout buffer's ceiling. Below it the wait follows the measured jitter (one output
    # block plus the link's peak lateness, about 20 ms on loopback).
    playout_buffer_ms: int = 60
    # "half_duplex": captured frames are not delivered while the reply plays (plus a
    # tail); "full_duplex_aec": always delivered, with WebRTC AEC3 removing the reply.
    echo_mode: EchoMode = "half_duplex"
    half_duplex_tail_ms: int = 200
    # Audio from just before a push-to-talk press that is sent with the turn, so a word
    # begun with (or a moment before) the press is not clipped. Needs `prepare_capture`.
    preroll_ms: int = 160
    # AEC3's hint for the speaker-to-mic delay; 0 lets its estimator find it.
    aec_stream_delay_ms: int = 0
    noise_gate: bool = False
    noise_gate_threshold_dbfs: float = -50.0
    normalize: bool = False
    normalize_target_dbfs: float = -20.0
    normalize_max_gain_db: float = 20.0
    silence_detection: bool = True
    silence_threshold_dbfs: float = -45.0
    silence_hangover_ms: int = 500
    # Open the input device at this rate instead of 16 kHz (and resample); None tries
    # 16 kHz first and falls back to the device's default rate.
    input_device_rate: int | None = None
    # Output device rate; None uses the reply rate when the device takes it, else the
    # device's default rate.
    output_device_rate: int | None = None
    # Replies go straight to the sound server (libpulse) when the output is the server's
    # (PulseAudio, or PipeWire's PulseAudio side): nothing is queued while idle, so a
    # reply's first sample sounds after the sink's few ms instead of behind PortAudio's
    # 30 ms of queued silence. False, or no server: PortAudio.
    server_output: bool = True
    # A device that fails is reopened this many times before the engine gives up.
    recovery_attempts: int = 3

    def __post_init__(self) -> None:
        if not 10 <= self.frame_ms <= 100 or (MIC_RATE * self.frame_ms) % 1000:
            raise AudioSettingsError(f"frame_ms must be 10..100 ms, got {self.frame_ms}")
        if not 0 <= self.playout_buffer_ms <= 500:
            raise AudioSettingsError(
                f"playout_buffer_ms must be 0..500, got {self.playout_buffer_ms}"
            )
        if self.echo_mode not in ("half_duplex", "full_duplex_aec"):
            raise AudioSettingsError(f"unknown echo_mode {self.echo_mode!r}")
        if not 0 <= self.preroll_ms <= 1000:
            raise AudioSettingsError(f"preroll_ms must be 0..1000, got {self.preroll_ms}")
        if self.half_duplex_tail_ms < 0 or self.aec_stream_delay_ms < 0:
            raise AudioSettingsError("half_duplex_tail_ms and aec_stream_delay_ms must be >= 0")
        for name in ("input_device_rate", "output_device_rate"):
            rate = getattr(self, name)
            if rate is not None and not 8000 <= rate <= 192000:
                raise AudioSettingsError(f"{name} must be 8000..192000 Hz, got {rate}")
        if self.recovery_attempts < 0:
            raise AudioSettingsError("recovery_attempts must be >= 0")

    @property
    def frame_samples(self) -> int:
        return MIC_RATE * self.frame_ms // 1000

    @property
    def preroll_frames(self) -> int:
        """Whole frames of pre-roll, rounded up so at least `preroll_ms` is kept."""
        return -(-self.preroll_ms // self.frame_ms)
