"""Prosody and the acoustic estimator on espeak-ng speech with known, controlled prosody."""

import itertools
import math

import numpy as np
import pytest

from emodesk.core.emotion import Emotion, EnergyLevel, Source
from emodesk.dsp.estimator import (
    F0_REGISTERS,
    AcousticEstimator,
    label_probabilities,
    register_z,
)
from emodesk.dsp.prosody import BLOCK_HOPS, ProsodyStream, extract_features
from tests.support.speech import (
    AGITATED,
    CALM,
    NORMAL,
    SENTENCES,
    VOICES,
    speech_16k,
)

RATE = 16000


@pytest.mark.parametrize("voice", VOICES)
@pytest.mark.parametrize("sentence", SENTENCES)
def test_agitated_rendering_gets_higher_arousal_than_calm(sentence: str, voice: str) -> None:
    calm = AcousticEstimator().estimate(
        speech_16k(sentence, CALM, voice), RATE, turn=1, t_start_s=0.0, t_end_s=1.0
    )
    agitated = AcousticEstimator().estimate(
        speech_16k(sentence, AGITATED, voice), RATE, turn=1, t_start_s=0.0, t_end_s=1.0
    )
    assert calm is not None and agitated is not None
    assert agitated.arousal is not None and calm.arousal is not None
    assert agitated.arousal > calm.arousal + 0.5
    assert agitated.source is Source.ACOUSTIC


def test_baseline_adapts_to_a_speaker_who_is_always_high_and_loud() -> None:
    """A voice that is always high and loud reads as agitated only against the prior."""
    estimator = AcousticEstimator(warmup_turns=3)
    arousals = []
    for turn, sentence in enumerate(SENTENCES * 2, start=1):
        reading = estimator.estimate(
            speech_16k(sentence, AGITATED, "en"), RATE, turn=turn, t_start_s=0.0, t_end_s=1.0
        )
        assert reading is not None and reading.arousal is not None
        arousals.append(reading.arousal)
    first, later = arousals[:3], arousals[3:]
    # Against the prior loud and fast reads as activated (less surely than against a
    # baseline: before one, only what lies beyond the spread between speakers counts).
    assert min(first) > 0.25 and sum(first) / len(first) > 0.5
    # Against the speaker's own baseline the same sentences read as ordinary for them.
    assert abs(sum(later) / len(later)) < 0.3
    # On average well below the prior's reading (per sentence the counted syllable rate
    # varies by up to 2 syllables/s, so one sentence alone can read a little either way).
    assert sum(later) / len(later) < sum(first) / len(first) - 0.3
    # Now a calm turn from the same speaker is clearly below their baseline.
    calm = estimator.estimate(
        speech_16k(SENTENCES[0], CALM, "en"), RATE, turn=9, t_start_s=0.0, t_end_s=1.0
    )
    assert calm is not None and calm.arousal is not None and calm.arousal < -0.5


def test_features_follow_the_controlled_prosody() -> None:
    low = extract_features(speech_16k(SENTENCES[1], CALM, "en"))
    high = extract_features(speech_16k(SENTENCES[1], AGITATED, "en"))
    assert high.f0_mean_st > low.f0_mean_st + 3.0  # espeak -p 85 vs -p 20
    assert high.loudness_dbfs > low.loudness_dbfs + 6.0  # -a 190 vs -a 40
    assert high.loudness_proxy > low.loudness_proxy
    assert high.duration_s < low.duration_s  # -s 240 vs -s 110
    assert 0.2 < low.voiced_ratio <= 1.0 and 0.0 <= low.pause_ratio < 1.0


@pytest.mark.parametrize("chunk", [320, 333, 7, RATE])
def test_streaming_features_equal_batch_features(chunk: int) -> None:
    pcm = speech_16k(SENTENCES[2], NORMAL, "en-us")
    stream = ProsodyStream(RATE)
    for start in range(0, pcm.size, chunk):
        stream.feed(pcm[start : start + chunk])
    assert stream.finish() == extract_features(pcm)


def test_silence_and_noise_give_no_reading() -> None:
    estimator = AcousticEstimator()
    silence = np.zeros(RATE * 2, np.int16)
    assert estimator.estimate(silence, RATE, turn=1, t_start_s=0.0, t_end_s=2.0) is None
    noise = np.random.default_rng(3).normal(0, 3000, RATE * 2).astype(np.int16)
    assert estimator.estimate(noise, RATE, turn=2, t_start_s=0.0, t_end_s=2.0) is None
    assert estimator.turns_heard == 0  # neither moved the baseline
    args = AcousticEstimator.report_args(noise, RATE)
    assert args["emotion"] == "neutral" and float(args["confidence"]) <= 0.2  # type: ignore[arg-type]


def test_valence_is_reported_with_less_confidence_than_arousal() -> None:
    # The same distance from neutral along valence decides the label far less surely
    # than along arousal.
    along_arousal = label_probabilities(-0.5, 0.0)
    along_valence = label_probabilities(0.0, 0.5)
    assert max(along_arousal.values()) > max(along_valence.values())
    # Clearly activated speech: which high-arousal label is right stays uncertain.
    high = label_probabilities(0.7, 0.0)
    top = max(high, key=lambda e: high[e])
    assert top in (Emotion.HAPPY, Emotion.ANGRY, Emotion.ANXIOUS)
    assert high[top] < 0.6


def test_report_args_for_the_emulator() -> None:
    args = AcousticEstimator.report_args(speech_16k(SENTENCES[0], AGITATED, "en"), RATE)
    assert set(args) == {"emotion", "confidence", "energy_level"}
    assert args["energy_level"] == EnergyLevel.HIGH.value
    assert 0.0 < float(args["confidence"]) <= 1.0  # type: ignore[arg-type]
    assert not math.isnan(float(args["confidence"]))  # type: ignore[arg-type]


@pytest.mark.parametrize("voice", VOICES)
@pytest.mark.parametrize("sentence", SENTENCES)
def test_normal_rendering_reads_neutral_or_unsure_against_the_prior(
    sentence: str, voice: str
) -> None:
    """An ordinary male or female voice is not read as subdued or agitated from pitch alone."""
    reading = AcousticEstimator().estimate(
        speech_16k(sentence, NORMAL, voice), RATE, turn=1, t_start_s=0.0, t_end_s=1.0
    )
    assert reading is not None
    assert reading.emotion is Emotion.NEUTRAL or reading.confidence < 0.3
    assert reading.emotion is not Emotion.SAD and reading.energy_level is not EnergyLevel.LOW


def test_pitch_between_the_male_and_female_registers_counts_as_typical() -> None:
    (man, man_sd), (woman, woman_sd) = F0_REGISTERS
    between = register_z((man + woman) / 2, F0_REGISTERS)
    low_man = register_z(man - 2 * man_sd, F0_REGISTERS)
    high_woman = register_z(woman + 2 * woman_sd, F0_REGISTERS)
    assert abs(between) < 0.05
    assert abs(register_z(man, F0_REGISTERS)) <= 0.15  # a typical man is not subdued
    assert abs(register_z(woman, F0_REGISTERS)) <= 0.15  # nor a typical woman excited
    assert low_man == pytest.approx(-2.0, abs=0.2) and high_woman == pytest.approx(2.0, abs=0.2)


def test_register_z_rises_with_pitch_everywhere() -> None:
    """Raising a voice's pitch never lowers its arousal, whichever register it is in (a
    likelihood-weighted mix of the two registers' z-scores fell between them)."""
    pitches = np.arange(12.0, 48.0, 0.25)
    zs = [register_z(float(p), F0_REGISTERS) for p in pitches]
    assert all(b > a for a, b in itertools.pairwise(zs))


def test_stream_with_bounded_work_per_feed_carries_the_rest_over() -> None:
    pcm = speech_16k(SENTENCES[0], NORMAL, "en")
    bounded = ProsodyStream(RATE, max_blocks_per_feed=1)
    backlog = []
    for start in range(0, pcm.size, RATE // 2):  # half-second chunks: more than one block
        bounded.feed(pcm[start : start + RATE // 2])
        backlog.append(bounded.pending_hops)
    assert max(backlog) > BLOCK_HOPS  # work was carried over, not done all at once
    assert bounded.finish() == extract_features(pcm)


def test_a_finished_stream_takes_no_more_audio() -> None:
    stream = ProsodyStream(RATE)
    stream.feed(np.zeros(RATE // 10, np.int16))
    stream.finish()
    with pytest.raises(RuntimeError, match="finished"):
        stream.feed(np.zeros(160, np.int16))
    with pytest.raises(ValueError, match="max_blocks_per_feed"):
        ProsodyStream(RATE, max_blocks_per_feed=0)
