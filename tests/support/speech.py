"""Speech made by espeak-ng with controlled pitch, rate, amplitude and voice, for tests.

WAVs are rendered once per test session into a private temporary folder (removed at exit)
and read back as 16 kHz mono int16 through `emodesk.dsp.wav.read_wav`.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emodesk.dsp.wav import read_wav

ESPEAK = shutil.which("espeak-ng")

SENTENCES = (
    "I can't believe you did that to my car yesterday afternoon.",
    "Please tell me when the next train to the city leaves.",
    "We have been waiting here for more than an hour now.",
)
VOICES = ("en", "en-us", "en+f3")


@dataclass(frozen=True)
class Prosody:
    pitch: int  # espeak-ng -p, 0..99
    rate: int  # -s, words per minute
    amplitude: int  # -a, 0..200


CALM = Prosody(pitch=20, rate=110, amplitude=40)
NORMAL = Prosody(pitch=50, rate=160, amplitude=100)
AGITATED = Prosody(pitch=85, rate=240, amplitude=190)

_cache_dir: Path | None = None


def _folder() -> Path:
    global _cache_dir
    if _cache_dir is None:
        _cache_dir = Path(tempfile.mkdtemp(prefix="emodesk-speech-"))
        atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def speech_wav(
    text: str, prosody: Prosody = NORMAL, voice: str = "en", folder: Path | None = None
) -> Path:
    """Path of an espeak-ng WAV (22.05 kHz mono) of `text`; rendered once per session."""
    if ESPEAK is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng)")
    key = f"{text}|{prosody}|{voice}".encode()
    path = (folder or _folder()) / f"{hashlib.sha1(key).hexdigest()[:16]}.wav"
    if not path.exists():
        tmp = path.with_suffix(".part")
        args = [ESPEAK, "-v", voice, "-p", str(prosody.pitch), "-s", str(prosody.rate)]
        args += ["-a", str(prosody.amplitude), "-w", str(tmp), text]
        subprocess.run(args, check=True, capture_output=True, timeout=30)
        tmp.replace(path)
    return path


def speech_16k(text: str, prosody: Prosody = NORMAL, voice: str = "en") -> np.ndarray:
    """16 kHz mono int16 samples of `text` spoken with `prosody` by `voice`."""
    pcm, _duration = read_wav(speech_wav(text, prosody, voice))
    return pcm


def with_silence(*parts: np.ndarray, gap_s: float = 1.0, rate: int = 16000) -> np.ndarray:
    """The parts joined by (and wrapped in) `gap_s` of digital silence."""
    gap = np.zeros(round(gap_s * rate), dtype=np.int16)
    pieces: list[np.ndarray] = [gap]
    for part in parts:
        pieces += [part.astype(np.int16), gap]
    return np.concatenate(pieces)
