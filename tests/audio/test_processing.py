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


def test_each_frame_is_paired_with_the_reference_at_its_index() -> None:
    """The reference is kept by its index on the far end's counter. A frame paired with
    a stretch not yet played (callback jitter) takes silence for that part, and the next
    frame goes on from the next index, not from what was left over; an index that does
    not follow (a restarted stream) starts the reference afresh."""
    aec = EchoCanceller()
    reference = np.arange(1, 2001, dtype=np.int16)
    paired: list[np.ndarray] = []
    aec.process_with_far = lambda near, far: paired.append(far.copy()) or near  # type: ignore[method-assign]
    frame = np.zeros(320, np.int16)
    aec.push_far(reference[:100], 5000)
    aec.process(frame, 5000)  # 220 samples not yet there
    assert np.array_equal(paired[0], np.concatenate((reference[:100], np.zeros(220, np.int16))))
    aec.push_far(reference[100:1000])  # follows on: index 5100
    assert aec.far_end == 6000 and aec.buffered == 1000 - 320
    aec.process(frame)  # the next frame's reference: from 5320
    assert np.array_equal(paired[1], reference[320:640])
    aec.process(frame, 5100)  # a frame paired further back (the pairing moved)
    assert np.array_equal(paired[2], reference[100:420])
    aec.process(frame, 4000)  # long before anything held: silence
    assert not paired[3].any()
    aec.push_far(reference[:50], 20000)  # a restarted stream
    assert aec.far_end == 20050
    aec.process(frame, 19990)
    assert np.array_equal(paired[4], np.concatenate((np.zeros(10, np.int16), reference[:50],
                                                     np.zeros(260, np.int16))))  # fmt: skip


def _user_voice(seconds: float) -> np.ndarray:
    """The user: a voiced sound at 130 Hz with a syllable rhythm, about -14 dBFS."""
    t = np.arange(round(seconds * 16000)) / 16000
    voice = sum(np.sin(2 * np.pi * k * 130.0 * t) / k for k in range(1, 8))
    return (voice * (0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * t)) * 4000).astype(np.int16)


def _through(aec: EchoCanceller, far: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Frame by frame as the engine does it: the reference pushed, then the capture."""
    out = []
    for i in range(0, far.size - FRAME + 1, FRAME):
        aec.push_far(far[i : i + FRAME])
        out.append(aec.process(near[i : i + FRAME]))
    return np.concatenate(out)


def _speech_over_reply(reply: np.ndarray, at_s: float) -> tuple[np.ndarray, slice]:
    near = np.zeros(reply.size, np.int16)
    user = _user_voice(1.0)
    start = round(at_s * 16000)
    near[start : start + user.size] = user
    return near, slice(start, start + user.size)


def test_with_no_echo_path_speech_over_a_reply_is_passed_after_one_quiet_reply(
    speech_wav: Path,
) -> None:
    """Headphones: the microphone never hears the reply. AEC3 alone suppresses what the
    user says over the first replies (19-23 dB over the first two here; it lets go after
    about 6 s of reply audio), so a barge-in is not heard; once a reply has played to a
    quiet microphone, a primed canceller takes over and passes it."""
    reply = speech16k(speech_wav)  # 3.6 s
    near, spoken = _speech_over_reply(reply, 0.5)
    alone = EchoCanceller()  # AEC3 by itself: `process_with_far` does not watch

    def aec3(near: np.ndarray) -> np.ndarray:
        frames = range(0, reply.size - FRAME + 1, FRAME)
        return np.concatenate(
            [alone.process_with_far(near[i : i + FRAME], reply[i : i + FRAME]) for i in frames]
        )

    aec3(np.zeros_like(reply))  # a reply, heard by nobody
    held_back = rms_dbfs(near[spoken]) - rms_dbfs(aec3(near)[spoken])
    assert held_back > 15, f"AEC3 alone took only {held_back:.1f} dB off the user"

    aec = EchoCanceller()
    _through(aec, reply, np.zeros_like(reply))
    assert aec.wait_for_priming(10.0)
    out = _through(aec, reply, near)
    assert aec.no_echo_path
    loss = rms_dbfs(near[spoken]) - rms_dbfs(out[spoken])
    assert loss < 6, f"the user over a reply lost {loss:.1f} dB"


def test_an_echo_path_is_never_taken_for_none(speech_wav: Path) -> None:
    """A speaker the microphone hears, loud or faint, early or late: never primed, and
    the echo is still cancelled."""
    reply = np.tile(speech16k(speech_wav), 2)
    for delay_ms, gain_db in ((10, 0), (60, -6), (200, -20), (300, -30)):
        aec = EchoCanceller()
        echo = room_echo(reply, delay_ms, gain_db)
        for _ in range(3):
            out = _through(aec, reply, echo)
        assert not aec.wait_for_priming(0.0)
        assert not aec.no_echo_path
        reduction = rms_dbfs(echo) - rms_dbfs(out)
        assert reduction > 20, f"{delay_ms} ms, {gain_db} dB: only {reduction:.1f} dB"


def test_a_user_talking_through_a_reply_is_no_evidence_of_no_echo(speech_wav: Path) -> None:
    reply = speech16k(speech_wav)
    aec = EchoCanceller()
    near = np.zeros_like(reply)
    user = _user_voice(reply.size / 16000)
    near[:] = user[: near.size]
    near[: 16000 // 2] = 0  # quiet for the first half second only
    _through(aec, reply, near)
    assert not aec.wait_for_priming(0.5)
