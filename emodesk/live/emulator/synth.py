"""Synthetic "speech" for the emulator's replies: deterministic, speech-like, not words.

A voiced source (harmonics of a gliding pitch) shaped by three formant bumps, with
syllable-rate (about 4 Hz) amplitude modulation and short pauses between "words".
Each voice has its own pitch and formant shift, so a voice change is audible and
measurable. Output: 16-bit little-endian mono PCM at 24 kHz.
"""

from __future__ import annotations

import zlib

import numpy as np

from emodesk.core.pcm import REPLY_RATE

OUTPUT_RATE = REPLY_RATE  # the emulator speaks as Gemini does
CHARS_PER_SECOND = 14.0
SYLLABLE_RATE_HZ = 4.0

# Pitch (Hz) per prebuilt voice; other names get a stable pitch from their hash.
VOICE_PITCH_HZ = {
    "Puck": 135.0,
    "Charon": 100.0,
    "Kore": 210.0,
    "Fenrir": 95.0,
    "Aoede": 220.0,
    "Leda": 235.0,
    "Orus": 115.0,
    "Zephyr": 200.0,
}
_FORMANTS_HZ = (700.0, 1200.0, 2600.0)
_FORMANT_WIDTH_HZ = (130.0, 170.0, 250.0)


def voice_pitch(voice: str) -> float:
    if voice in VOICE_PITCH_HZ:
        return VOICE_PITCH_HZ[voice]
    return 90.0 + float(zlib.crc32(voice.encode()) % 150)


def duration_for(text: str) -> float:
    return max(0.4, len(text) / CHARS_PER_SECOND)


def synthesize(
    text: str, voice: str, rate: int = OUTPUT_RATE, duration_s: float | None = None
) -> bytes:
    """PCM16 for `text` spoken "in" `voice`; the same arguments give the same bytes."""
    seconds = duration_for(text) if duration_s is None else duration_s
    n = max(1, round(seconds * rate))
    t = np.arange(n) / rate
    seed = zlib.crc32(f"{voice}|{text}".encode())
    rng = np.random.default_rng(seed)
    f0 = voice_pitch(voice)
    # A falling declination with a little vibrato-like wobble, as in read speech.
    contour = f0 * (1.08 - 0.16 * t / max(seconds, 1e-6)) * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(contour) / rate
    shift = 1.0 + (f0 - 150.0) / 1000.0  # higher voices: slightly higher formants
    signal = np.zeros(n)
    for k in range(1, int(3400 // f0) + 1):
        harmonic_hz = k * f0
        gain = sum(
            np.exp(-0.5 * ((harmonic_hz - fc * shift) / bw) ** 2)
            for fc, bw in zip(_FORMANTS_HZ, _FORMANT_WIDTH_HZ, strict=True)
        )
        signal += (gain + 0.02) / k**0.5 * np.sin(k * phase)
    # Syllables: raised-cosine envelopes at ~4 Hz; every few syllables a pause ("word gap").
    syllable = 0.5 - 0.5 * np.cos(2 * np.pi * SYLLABLE_RATE_HZ * t)
    word = (np.floor(t * SYLLABLE_RATE_HZ) % 5 != 4).astype(float)
    envelope = syllable * word
    envelope *= 0.85 + 0.15 * rng.standard_normal(1)[0] ** 2 % 1.0
    breath = 0.01 * rng.standard_normal(n)
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02).clip(0.0, 1.0)
    out = (signal * envelope + breath) * fade
    peak = float(np.max(np.abs(out))) or 1.0
    pcm = np.round(out / peak * 0.5 * 32767).astype("<i2")
    return bytes(pcm.tobytes())
