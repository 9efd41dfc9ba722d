"""Audio devices as the layers above the audio engine speak of them."""

from __future__ import annotations

from typing import Literal

# Which device a report is about: the microphone ("input": a turn being spoken cannot go
# on) or the speaker ("output": the conversation can).
DeviceSide = Literal["input", "output"]
