"""The PCM formats of a Live conversation, declared once: 16-bit little-endian mono,
16 kHz from the microphone to the model, 24 kHz for the model's voice."""

from __future__ import annotations

MIC_RATE = 16_000  # what the Live API takes
REPLY_RATE = 24_000  # what Gemini's spoken replies arrive as
SAMPLE_BYTES = 2  # PCM16
MIC_MIME = f"audio/pcm;rate={MIC_RATE}"
MIC_BYTES_PER_SECOND = MIC_RATE * SAMPLE_BYTES


def pcm_seconds(byte_count: int, rate: int) -> float:
    """How long `byte_count` bytes of mono PCM16 at `rate` Hz last."""
    return byte_count / SAMPLE_BYTES / rate
