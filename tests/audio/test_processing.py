"""The capture chain (noise gate, normalisation, silence detection) and AEC3 on real
speech and on silence, frame by frame as the engine runs them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from emodesk.audio.echo import EchoCanceller
from emodesk.audio.processing import CaptureProcessor
from emodesk.audio.settings import AudioSettings
from emodesk.dsp.levels import rms_dbfs
from emodesk.dsp.resample import resample
from tests.support.pulse import read_wav

FRAME = 320  # 20 ms at 16 kHz


def speech16k(path: Path) -> np.ndarray:
    samples, rate = read_wav(path)
    return resample(samples, rate, 16000)


def run_chain(settings: AudioSettings, signal: np.ndarray) -> tuple[np.ndarray, list[bool]]:
    proc = CaptureProcessor(settings)
    out, silent = [], []
    for i in range(0, signal.size - FRAME + 1, FRAME):
        out.append(proc.process(signal[i : i + FRAME]))
        silent.append(proc.silent)
    return np.concatenate(out), silent


def with_pause_and_hiss(speech: np.ndarray) -> tuple[np.ndarray, slice]:
    """Speech, then one second of -60 dBFS hiss; returns the signal and the hiss part."""
    rng = np.random.default_rng(1)
    hiss = (rng.standard_normal(16000) * 32768 * 10 ** (-60 / 20)).astype(np.int16)
    n = speech.size - speech.size % FRAME
    return np.concatenate((speech[:n], hiss)), slice(n + 3200, n + 16000)


def test_noise_gate_silences_hiss_and_keeps_speech(speech_wav: Path) -> None:
    signal, hiss = with_pause_and_hiss(speech16k(speech_wav))
    s = AudioSettings(noise_gate=True, noise_gate_threshold_dbfs=-50, silence_detection=False)
    gated, _ = run_chain(s, signal)
    assert rms_dbfs(signal[hiss]) > -65
    assert rms_dbfs(gated[hiss]) < -100, "the gate must close over the hiss"
    speech_part = slice(0, hiss.start - 3200)
    kept = np.sum(gated[speech_part].astype(float) ** 2) / np.sum(
        signal[speech_part].astype(float) ** 2
    )
    assert kept > 0.97, f"the gate removed {100 * (1 - kept):.1f}% of the speech energy"


def test_normalisation_brings_quiet_speech_up_without_boosting_silence(
    speech_wav: Path,
) -> None:
    quiet = (speech16k(speech_wav) * 10 ** (-18 / 20)).astype(np.int16)
    signal, hiss = with_pause_and_hiss(quiet)
    s = AudioSettings(normalize=True, normalize_target_dbfs=-20, silence_detection=False)
    out, _ = run_chain(s, signal)
    speech_part = slice(signal.size // 3, hiss.start - 3200)
    gain = rms_dbfs(out[speech_part]) - rms_dbfs(signal[speech_part])
    assert gain > 8, f"quiet speech was raised only {gain:.1f} dB"
    hiss_gain = rms_dbfs(out[hiss]) - rms_dbfs(signal[hiss])
    assert hiss_gain <= gain + 0.5, "the pause must not be boosted more than the speech"
    assert int(np.abs(out.astype(int)).max()) <= 32767
    silent_out, _ = run_chain(s, np.zeros(16000, dtype=np.int16))
    assert not silent_out.any(), "digital silence stays silence"


def test_silence_detection_follows_speech_and_pause(speech_wav: Path) -> None:
    signal, hiss = with_pause_and_hiss(speech16k(speech_wav))
    _, silent = run_chain(AudioSettings(silence_hangover_ms=300), signal)
    speaking = silent[10 : (hiss.start - 3200) // FRAME - 20]
    assert sum(speaking) / len(speaking) < 0.2, "speech read as silence"
    assert all(silent[-10:]), "the pause after speech must read as silence"


def test_chain_with_everything_off_is_bit_exact(speech_wav: Path) -> None:
    signal = speech16k(speech_wav)
    signal = signal[: signal.size - signal.size % FRAME]
    out, _ = run_chain(replace(AudioSettings(), silence_detection=False), signal)
    assert np.array_equal(out, signal)


def room_echo(far: np.ndarray, delay_ms: float = 30, gain_db: float = -6) -> np.ndarray:
    """A recorded-style echo path: delay, a decaying reverberant tail, attenuation."""
    rng = np.random.default_rng(7)
    taps = int(16000 * 0.05)
    rir = rng.standard_normal(taps) * np.exp(-np.arange(taps) / (16000 * 0.01))
    rir[0] = 3.0
    rir /= np.sqrt(np.sum(rir**2))
    delay = int(16000 * delay_ms / 1000)
    echo = np.convolve(far.astype(float), rir)[: far.size]
    echo = np.concatenate((np.zeros(delay), echo))[: far.size] * 10 ** (gain_db / 20)
    return np.clip(echo, -32768, 32767).astype(np.int16)


def test_aec_removes_the_reply_heard_through_the_speaker(speech_wav: Path) -> None:
    far = np.tile(speech16k(speech_wav), 3)  # ~6 s: AEC3 converges within the first
    near = room_echo(far)
    aec = EchoCanceller()
    out = np.concatenate(
        [
            aec.process_with_far(near[i : i + FRAME], far[i : i + FRAME])
            for i in range(0, far.size - FRAME + 1, FRAME)
        ]
    )
    tail = slice(far.size // 2, out.size)  # after convergence
    reduction = rms_dbfs(near[tail]) - rms_dbfs(out[tail])
    assert reduction > 15, f"AEC reduced the echo by only {reduction:.1f} dB"


def test_aec_keeps_near_speech_when_the_speaker_is_silent(speech_wav: Path) -> None:
    near = speech16k(speech_wav)
    aec = EchoCanceller()
    silence = np.zeros(FRAME, dtype=np.int16)
    out = np.concatenate(
        [
            aec.process_with_far(near[i : i + FRAME], silence)
            for i in range(0, near.size - FRAME + 1, FRAME)
        ]
    )
    loss = rms_dbfs(near[: out.size]) - rms_dbfs(out)
    assert loss < 3, f"AEC took {loss:.1f} dB off speech with no echo to cancel"


def test_a_frame_that_found_the_reference_short_skips_that_much_of_it_later() -> None:
    """Callback jitter: the reference for part of a frame had not come yet. The frame
    takes zeros for it, and when it comes that part is skipped, so every later frame is
    still paired with the reference of its own moment."""
    aec = EchoCanceller()
    reference = np.arange(1, 2001, dtype=np.int16)
    paired: list[np.ndarray] = []
    aec.process_with_far = lambda near, far: paired.append(far.copy()) or near  # type: ignore[method-assign]
    frame = np.zeros(320, np.int16)
    aec.push_far(reference[:100])
    aec.process(frame)  # 220 samples short
    assert np.array_equal(paired[0], np.concatenate((reference[:100], np.zeros(220, np.int16))))
    aec.push_far(reference[100:1000])  # the 220 it went without come now, with more
    assert aec.buffered == 1000 - 320
    aec.process(frame)
    assert np.array_equal(paired[1], reference[320:640])
    # Owed beyond 40 ms (640 samples), the pairing moves instead (the capture clock
    # runs ahead of the speaker's).
    aec.process(frame)  # 360 there: 320 of them taken
    for _ in range(3):
        aec.process(frame)  # 40 there, then none: 280 + 320 + 320 short
    aec.push_far(reference[1000:2000])
    assert aec.buffered == 1000 - 640
