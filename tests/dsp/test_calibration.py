"""Calibration across voices: before a speaker's baseline exists, the label must not depend
on who speaks. Ordinary, neutral readings by six voices of two synthesizers read `neutral`,
and whatever does not is said with low confidence."""

from __future__ import annotations

from collections import Counter

import pytest

from emodesk.core.emotion import Emotion
from emodesk.dsp.estimator import PRIOR_RELIABILITY, AcousticEstimator
from emodesk.dsp.prosody import extract_features
from tests.support.speech import AGITATED, ALL_VOICES, CALM, NEUTRAL_SENTENCES, Voice, render
from tests.support.speech import speech_16k as espeak_16k

VOICES = [pytest.param(v, id=str(v)) for v in ALL_VOICES]  # flite or espeak-ng missing: fails


@pytest.mark.parametrize("voice", VOICES)
def test_neutral_readings_read_neutral_or_unsure_before_a_baseline(voice: Voice) -> None:
    labels: Counter[Emotion] = Counter()
    for text in NEUTRAL_SENTENCES:
        est = AcousticEstimator().assess(extract_features(render(text, voice)))
        assert est is not None and est.from_prior
        labels[est.emotion] += 1
        # Never a confident label before a baseline, neutral included.
        assert est.confidence <= PRIOR_RELIABILITY
        if est.emotion is not Emotion.NEUTRAL:
            assert est.confidence < 0.3, f"{voice}: {text!r} read {est.emotion} {est.confidence}"
    assert labels[Emotion.NEUTRAL] >= len(NEUTRAL_SENTENCES) - 1, f"{voice}: {dict(labels)}"


@pytest.mark.parametrize("voice", ["en", "en-us", "en+f3"])
def test_before_a_baseline_shouted_fast_speech_still_reads_above_slow_quiet_speech(
    voice: str,
) -> None:
    """The dead zone keeps ordinary voices neutral, not far-out turns: agitated renderings
    (high, fast, loud) read clearly above calm ones (low, slow, soft) against the prior."""
    for text in NEUTRAL_SENTENCES[:3]:
        calm = AcousticEstimator().assess(extract_features(espeak_16k(text, CALM, voice)))
        agitated = AcousticEstimator().assess(extract_features(espeak_16k(text, AGITATED, voice)))
        assert calm is not None and agitated is not None
        assert agitated.arousal > calm.arousal + 0.3
        assert agitated.arousal > 0.2
