"""Speech made by espeak-ng and flite with controlled pitch, rate, amplitude and voice, for tests.

WAVs are rendered once per test session into a private temporary folder (removed at exit)
and read back as 16 kHz mono int16 through `emodesk.dsp.wav.read_wav`.

`render(text, voice, cues)` varies one cue at a time from a voice's own default: tempo
(espeak-ng `-s`, flite `duration_stretch`), pitch (espeak-ng `-p`, flite `f0_shift`) and
loudness (a gain on the samples, nothing else changed), for both synthesizers alike.
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
FLITE = shutil.which("flite")

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


@dataclass(frozen=True)
class Voice:
    synth: str  # "espeak-ng" or "flite"
    name: str

    def __str__(self) -> str:
        return f"{self.synth}:{self.name}"


# Three voices per synthesizer: two male and one female each. flite's `rms` is left out:
# it ignores every pitch control, so it cannot render a pitch-alone pair.
ESPEAK_VOICES = (Voice("espeak-ng", "en"), Voice("espeak-ng", "en-us"), Voice("espeak-ng", "en+f3"))
FLITE_VOICES = (Voice("flite", "awb"), Voice("flite", "slt"), Voice("flite", "kal16"))
ALL_VOICES = ESPEAK_VOICES + FLITE_VOICES


def available(voice: Voice) -> bool:
    return (ESPEAK if voice.synth == "espeak-ng" else FLITE) is not None


@dataclass(frozen=True)
class Cues:
    """One rendering's cues relative to the voice's default: `tempo` 1.4 is 40% faster,
    `pitch` is the synthesizer's own step (-1, 0, +1: about -2.5, 0, +2.5 semitones),
    `gain_db` scales the samples."""

    tempo: float = 1.0
    pitch: int = 0
    gain_db: float = 0.0


ESPEAK_BASE_WPM = 160
ESPEAK_PITCH_STEP = 15  # -p 50 +- 15: about 2.5 semitones each way
FLITE_F0_STEP = 1.16  # f0_shift 1.16: about 2.6 semitones


def _espeak_args(text: str, voice: str, cues: Cues, out: Path) -> list[str]:
    assert ESPEAK is not None
    rate = round(ESPEAK_BASE_WPM * cues.tempo)
    pitch = 50 + ESPEAK_PITCH_STEP * cues.pitch
    return [ESPEAK, "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(out), text]


def _flite_args(text: str, voice: str, cues: Cues, out: Path) -> list[str]:
    assert FLITE is not None
    args = [FLITE, "-voice", voice, "--setf", f"duration_stretch={1.0 / cues.tempo:.4f}"]
    if cues.pitch:
        args += ["--setf", f"f0_shift={FLITE_F0_STEP**cues.pitch:.4f}"]
    return [*args, "-t", text, "-o", str(out)]


# Sentences for the one-cue renderings, the turns that make a voice's baseline, and ordinary
# neutral readings (tests/dsp/test_one_cue.py, test_calibration.py and `python -m bench dsp`).
CUE_SENTENCES = (
    "I can't believe you did that to my car yesterday afternoon.",
    "Please tell me when the next train to the city leaves.",
    "We have been waiting here for more than an hour now.",
    "The meeting was moved to Thursday morning at nine.",
)
WARM_UP_SENTENCES = (
    "She said the parcel would arrive some time next week.",
    "My brother lives in a small town by the sea.",
    "Could you send me the notes from the last lesson?",
)
NEUTRAL_SENTENCES = (
    *CUE_SENTENCES,
    *WARM_UP_SENTENCES,
    "The library opens at ten on weekdays.",
    "I will call you back after lunch.",
)
# (lower, higher) renderings: 40% faster; about 5 semitones higher; 6 dB louder.
CUE_PAIRS = {
    "rate": (Cues(tempo=1.0), Cues(tempo=1.4)),
    "pitch": (Cues(pitch=-1), Cues(pitch=1)),
    "loudness": (Cues(gain_db=-6.0), Cues(gain_db=0.0)),
}


def render_wav(text: str, voice: Voice, cues: Cues = Cues()) -> Path:
    """Path of a WAV of `text` by `voice` at `cues` tempo and pitch (gain is not applied)."""
    if not available(voice):
        raise RuntimeError(f"{voice.synth} is not installed (Debian package {voice.synth})")
    key = f"{text}|{voice}|{cues.tempo}|{cues.pitch}".encode()
    path = _folder() / f"{hashlib.sha1(key).hexdigest()[:16]}.wav"
    if not path.exists():
        tmp = path.with_suffix(".part.wav")
        make = _espeak_args if voice.synth == "espeak-ng" else _flite_args
        args = make(text, voice.name, cues, tmp)
        subprocess.run(args, check=True, capture_output=True, timeout=30)
        tmp.replace(path)
    return path


def render(text: str, voice: Voice, cues: Cues = Cues()) -> np.ndarray:
    """16 kHz mono int16 samples of `text` by `voice` with `cues`."""
    pcm, _duration = read_wav(render_wav(text, voice, cues))
    if cues.gain_db:
        scaled = pcm.astype(np.float64) * 10.0 ** (cues.gain_db / 20.0)
        pcm = np.clip(np.rint(scaled), -32768, 32767).astype(np.int16)
    return pcm


def trimmed(pcm: np.ndarray, below_peak_db: float = 40.0) -> np.ndarray:
    """`pcm` without its leading and trailing quiet (10 ms hops this far under the loudest)."""
    n = pcm.size // 160
    hops = pcm[: n * 160].astype(np.float64).reshape(n, 160)
    level = 10.0 * np.log10(np.mean(hops * hops, axis=1) + 1e-9)
    loud = np.flatnonzero(level > level.max() - below_peak_db)
    return pcm[loud[0] * 160 : (loud[-1] + 1) * 160]


def with_silence(*parts: np.ndarray, gap_s: float = 1.0, rate: int = 16000) -> np.ndarray:
    """The parts joined by (and wrapped in) `gap_s` of digital silence."""
    gap = np.zeros(round(gap_s * rate), dtype=np.int16)
    pieces: list[np.ndarray] = [gap]
    for part in parts:
        pieces += [part.astype(np.int16), gap]
    return np.concatenate(pieces)
