"""Measurement hooks for the audio engine (the benchmark's): the engine calls them, if
one is set, where the path's timing is known; it keeps no figures of its own."""

from __future__ import annotations

from typing import Protocol


class AudioObserver(Protocol):
    """Called on the engine's threads (a PortAudio callback among them): keep it cheap."""

    def frame_posted(self, t_callback: float) -> None:
        """A microphone frame left for the loop; `t_callback` its capture callback time."""

    def reply_buffered(self, t_play: float, t_buffered: float, samples: int) -> None:
        """Reply audio given to `play()` at `t_play` reached the playout buffer."""

    def reply_played(self, samples: int, t_callback: float) -> None:
        """The output callback used `samples` reply samples: handed to the device, or
        dropped by the playout buffer to shrink its delay."""
