"""Acoustic emotion estimate of one user turn, from prosody relative to the speaker's baseline.

How a turn becomes a reading
----------------------------
1. Features (`prosody.extract_features`, eGeMAPS definitions) of the turn's speech.
2. Speaker normalisation: each feature becomes a z-score against the speaker's running
   baseline within the session, so a naturally high or loud voice is not read as agitated.
   Until `warmup_turns` turns with speech have been heard the baseline is the stated
   `DEFAULT_PRIOR` (typical adult conversational speech); afterwards it is the mean/std
   of the speaker's own turns (an exponentially weighted average over about the last
   `BASELINE_MEMORY` turns; the std pools the speaker's spread with
   `WITHIN_SPEAKER_FRACTION` of the prior's, weighted as `PRIOR_STD_TURNS` turns, so a
   few similar turns do not make every change look huge).
   Adult speaking pitch is bimodal (men about 115 Hz, women about 200 Hz), so under the
   prior the F0 z-score is taken against both registers (`F0_REGISTERS`), weighted by how
   well each explains the turn: a typical man's or woman's voice reads as typical, and a
   pitch between the registers is ambiguous and counts little. One population Gaussian
   would read every ordinary male voice as subdued and every female one as excited.
3. Arousal (activation) = tanh of a weighted sum of z-scores. Raised F0, wider F0
   variation, louder voice, flatter spectral tilt (higher alpha ratio), faster rate and
   fewer pauses all go with higher arousal: the most replicated vocal cues (Scherer 2003,
   Speech Communication 40; Juslin & Laukka 2003, Psychological Bulletin 129; Banse &
   Scherer 1996, JPSP 70). Weights are in `AROUSAL_WEIGHTS`.
4. Valence = a deliberately small tanh of weaker cues (`VALENCE_WEIGHTS`): livelier F0
   movement and rate read as more positive, a tense flat spectrum (anger, fear) and long
   pauses with flat F0 (sadness) as more negative. Acoustic valence is known to be poor:
   eGeMAPS baselines reach far lower accuracy on valence than on arousal (Eyben et al.
   2016; Schuller et al. 2009), so `VALENCE_SCALE` keeps it close to 0.
5. Labels: the reading is placed in the circumplex (Russell 1980) and compared with
   each label's prototype (`PROTOTYPES`) under Gaussian likelihoods whose valence spread
   (`VALENCE_SIGMA`) is much wider than their arousal spread (`AROUSAL_SIGMA`). High-arousal
   happy, angry and anxious therefore share probability, as do sad and neutral at the low
   end: the confidence shows that prosody tells how activated a speaker is, not how they feel.
6. Confidence = the winning label's posterior times a reliability factor for the turn:
   less when the baseline is still the prior (`PRIOR_RELIABILITY`), when the turn is short
   or has little voicing.
7. Before a baseline exists, a voice's own traits (a high, loud or slow voice) cannot be
   told from its state, so labels must not depend on who speaks: each prior z-score counts
   only beyond `PRIOR_DEAD_ZONE_Z` between-speaker stds, and `neutral` is favoured by
   `PRIOR_NEUTRAL_ODDS`. An unsure turn then reads `neutral` with low confidence rather
   than a confident wrong label; a turn far out of the ordinary (shouted, fast and high)
   still reads activated. Energy level follows arousal (thirds of [-1, 1]).
A turn with (almost) no voiced speech gives None: silence and noise produce no reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from emodesk.core.emotion import Emotion, EmotionReading, EnergyLevel, Source
from emodesk.dsp.prosody import ProsodyFeatures, extract_features

FEATURES = (
    "f0_mean_st",
    "f0_std_st",
    "loudness_dbfs",
    "alpha_ratio_db",
    "syllable_rate",
    "pause_ratio",
)

# Typical adult conversational speech at 16 kHz in dBFS terms (a stated prior, not a
# measurement of this speaker): mean, std per feature.
DEFAULT_PRIOR_MEAN = {
    # Population mean (~145 Hz); under the prior F0 is judged by `F0_REGISTERS` instead.
    "f0_mean_st": 29.0,
    "f0_std_st": 2.5,
    # ITU-T P.56 nominal active speech level (-26 dBov); microphones and gains vary a lot,
    # hence the wide spread.
    "loudness_dbfs": -26.0,
    "alpha_ratio_db": -12.0,
    # Articulation rate, syllables per second of speaking time: adults in conversation
    # average about 5 with a between-speaker spread under 1 (de Jong & Wempe 2009; Jacewicz
    # et al. 2009, JASA 126). The nuclei counter reads 4.7-5.6 on six synthetic voices at
    # their default tempo (espeak-ng 160 wpm, flite's own).
    "syllable_rate": 5.0,
    "pause_ratio": 0.15,
}
DEFAULT_PRIOR_STD = {
    "f0_mean_st": 5.0,
    "f0_std_st": 1.2,
    "loudness_dbfs": 8.0,
    "alpha_ratio_db": 4.0,
    "syllable_rate": 1.0,
    "pause_ratio": 0.15,
}
# Speaking F0 registers of adult men and women (mean, between-speaker std) in semitones
# from 27.5 Hz: about 115 Hz and 200 Hz, each +-3 st (Baken & Orlikoff 2000, Clinical
# Measurement of Speech and Voice; Titze 1994, Principles of Voice Production).
F0_REGISTERS: tuple[tuple[float, float], ...] = ((24.5, 3.0), (34.5, 3.0))

RATE_WEIGHT = 0.20
AROUSAL_WEIGHTS = {
    "f0_mean_st": 0.30,
    "f0_std_st": 0.10,
    "loudness_dbfs": 0.30,
    "alpha_ratio_db": 0.10,
    # Tempo is among the strongest arousal cues (Juslin & Laukka 2003: faster in anger, fear
    # and joy, slower in sadness). Its weight is set so that a 40% faster rendering of the
    # same sentence, pitch and level unchanged, reads higher for every voice in the tests
    # (tests/dsp/test_one_cue.py), moving arousal about as much as +2.5 st of pitch does.
    "syllable_rate": RATE_WEIGHT,
    "pause_ratio": -0.10,
}
AROUSAL_GAIN = 1.2  # tanh(gain * weighted z): one std up on every cue gives about 0.85

VALENCE_WEIGHTS = {
    "f0_std_st": 0.35,
    "syllable_rate": 0.15,
    "alpha_ratio_db": -0.30,
    "pause_ratio": -0.20,
}
VALENCE_SCALE = 0.5  # valence = VALENCE_SCALE * tanh(weighted z)

# (arousal, valence) prototypes in the circumplex (Russell 1980).
PROTOTYPES: dict[Emotion, tuple[float, float]] = {
    Emotion.NEUTRAL: (0.0, 0.0),
    Emotion.HAPPY: (0.5, 0.5),
    Emotion.ANGRY: (0.7, -0.5),
    Emotion.ANXIOUS: (0.45, -0.4),
    Emotion.SAD: (-0.5, -0.4),
}
AROUSAL_SIGMA = 0.25
VALENCE_SIGMA = 0.6

PRIOR_RELIABILITY = 0.5
# Before a baseline exists a cue within about this many between-speaker stds of typical
# says who is speaking, not how: it counts only beyond that (a soft dead zone on each prior
# z-score). Without it, ordinary neutral readings by six synthetic voices came out sad,
# anxious, angry or happy in 25 of 54 cases (one voice sad in all nine, at confidence 0.55);
# with 0.75, 53 of 54 read neutral (the other sad at 0.20), while a shouted, fast turn still
# reads activated (0.3-0.7). 1.0 made all 54 neutral but a shouted turn as low as 0.24.
PRIOR_DEAD_ZONE_Z = 0.75
# ... and the label is `neutral` unless another is this many times likelier.
PRIOR_NEUTRAL_ODDS = 2.0
Z_LIMIT = 4.0  # z-scores are squashed towards +-Z_LIMIT (tanh), never cut
MIN_VOICED_S = 0.15  # less voiced speech than this is not a turn with speech
FULL_RELIABILITY_S = 1.5  # shorter turns are trusted proportionally less
BASELINE_MEMORY = 20
WITHIN_SPEAKER_FRACTION = 0.5  # one speaker varies about half as much as a population
PRIOR_STD_TURNS = 3.0


@dataclass
class Baseline:
    """A speaker's feature means and stds (the prior, or what the session has heard)."""

    mean: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIOR_MEAN))
    std: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIOR_STD))
    turns: int = 0
    # (mean, std) of pitch registers; empty means F0 is judged by mean/std like the rest.
    f0_registers: tuple[tuple[float, float], ...] = F0_REGISTERS

    def z(self, features: ProsodyFeatures) -> dict[str, float]:
        """z-score per feature; a missing (nan) feature counts as typical (0)."""
        out: dict[str, float] = {}
        for name in FEATURES:
            value = float(getattr(features, name))
            if not math.isfinite(value):
                out[name] = 0.0
            elif name == "f0_mean_st" and self.f0_registers:
                out[name] = register_z(value, self.f0_registers)
            else:
                out[name] = (value - self.mean[name]) / self.std[name]
        return out


# Between the lowest and the highest register a pitch is typical for someone: it moves the
# z-score by at most this much either way, so a higher pitch still reads a little higher.
REGISTER_PLATEAU_Z = 0.15


def register_z(value: float, registers: tuple[tuple[float, float], ...]) -> float:
    """z-score against a set of registers: below the lowest, against the lowest; above the
    highest, against the highest; between them nearly 0 (a gentle slope of at most
    `REGISTER_PLATEAU_Z`). It rises with pitch everywhere, so raising a voice's pitch never
    lowers its arousal, whatever register it started in."""
    (lo, lo_std), (hi, hi_std) = min(registers), max(registers)
    if value < lo:
        z = (value - lo) / lo_std
    elif value > hi:
        z = (value - hi) / hi_std
    else:
        z = 0.0
    if hi > lo:
        z += REGISTER_PLATEAU_Z * max(-1.0, min(1.0, (2.0 * value - lo - hi) / (hi - lo)))
    return z


DEFAULT_PRIOR = Baseline()


@dataclass(frozen=True)
class Estimate:
    """Everything behind one reading, for tests, the analyze table and debugging."""

    features: ProsodyFeatures
    z: dict[str, float]
    arousal: float
    valence: float
    emotion: Emotion
    confidence: float
    energy_level: EnergyLevel
    probabilities: dict[Emotion, float]
    from_prior: bool


def energy_for(arousal: float) -> EnergyLevel:
    if arousal > 1.0 / 3.0:
        return EnergyLevel.HIGH
    if arousal < -1.0 / 3.0:
        return EnergyLevel.LOW
    return EnergyLevel.MEDIUM


def label_probabilities(
    arousal: float, valence: float, neutral_odds: float = 1.0
) -> dict[Emotion, float]:
    """Posterior of each label under Gaussian likelihoods around the prototypes; with
    `neutral_odds` > 1 the prior favours `neutral` by that factor."""
    logits = {
        label: -0.5 * ((arousal - a) / AROUSAL_SIGMA) ** 2
        - 0.5 * ((valence - v) / VALENCE_SIGMA) ** 2
        for label, (a, v) in PROTOTYPES.items()
    }
    logits[Emotion.NEUTRAL] += math.log(neutral_odds)
    top = max(logits.values())
    weights = {label: math.exp(lg - top) for label, lg in logits.items()}
    total = sum(weights.values())
    return {label: w / total for label, w in weights.items()}


def _beyond_dead_zone(z: float) -> float:
    """z less a soft dead zone: about z - D far out, about z^3 / (3 D^2) inside; it still
    rises with z everywhere, so a change of one cue is never read backwards."""
    d = PRIOR_DEAD_ZONE_Z
    return z - d * math.tanh(z / d)


def _weighted(z: dict[str, float], weights: dict[str, float]) -> float:
    return sum(w * z[name] for name, w in weights.items())


def _voiced_seconds(features: ProsodyFeatures) -> float:
    speech_s = features.duration_s * (1.0 - features.pause_ratio)
    return speech_s * features.voiced_ratio


class AcousticEstimator:
    """Estimates each turn's emotion and keeps the speaker's baseline for the session."""

    def __init__(self, prior: Baseline | None = None, warmup_turns: int = 3) -> None:
        if warmup_turns < 0:
            raise ValueError(f"warmup_turns must be >= 0, got {warmup_turns}")
        self.prior = replace(prior) if prior is not None else Baseline()
        self.warmup_turns = warmup_turns
        self._speaker = Baseline(dict(self.prior.mean), {k: 0.0 for k in FEATURES}, 0, ())
        self._var = {k: 0.0 for k in FEATURES}

    @property
    def turns_heard(self) -> int:
        return self._speaker.turns

    @property
    def baseline(self) -> Baseline:
        """The baseline the next turn is judged against."""
        if self._speaker.turns < max(1, self.warmup_turns):
            return self.prior
        # A few turns say little about spread: pool the speaker's variance with a
        # within-speaker share of the prior's, weighted as PRIOR_STD_TURNS turns.
        n = self._speaker.turns
        std = {
            k: math.sqrt(
                (PRIOR_STD_TURNS * (WITHIN_SPEAKER_FRACTION * self.prior.std[k]) ** 2
                 + n * self._var[k]) / (PRIOR_STD_TURNS + n)
            )
            for k in FEATURES
        }  # fmt: skip
        return Baseline(dict(self._speaker.mean), std, self._speaker.turns, ())

    def _update(self, features: ProsodyFeatures) -> None:
        n = self._speaker.turns + 1
        alpha = max(1.0 / n, 1.0 / BASELINE_MEMORY)
        for name in FEATURES:
            value = float(getattr(features, name))
            if not math.isfinite(value):
                continue
            if n == 1:
                self._speaker.mean[name] = value
                continue
            delta = value - self._speaker.mean[name]
            self._speaker.mean[name] += alpha * delta
            self._var[name] = (1.0 - alpha) * (self._var[name] + alpha * delta * delta)
        self._speaker.turns = n

    def assess(self, features: ProsodyFeatures, *, update: bool = True) -> Estimate | None:
        """The estimate for one turn's features, or None when it holds no speech."""
        voiced_s = _voiced_seconds(features)
        if voiced_s < MIN_VOICED_S or not math.isfinite(features.f0_mean_st):
            return None
        base = self.baseline
        from_prior = base is self.prior
        # Soft limit: a far-out cue counts less, but more than a nearer one (a hard clip would
        # tie a 40% faster turn with a 60% faster one).
        z = {k: Z_LIMIT * math.tanh(v / Z_LIMIT) for k, v in base.z(features).items()}
        if from_prior:
            z = {k: _beyond_dead_zone(v) for k, v in z.items()}
        arousal = math.tanh(AROUSAL_GAIN * _weighted(z, AROUSAL_WEIGHTS))
        valence = VALENCE_SCALE * math.tanh(_weighted(z, VALENCE_WEIGHTS))
        probs = label_probabilities(arousal, valence, PRIOR_NEUTRAL_ODDS if from_prior else 1.0)
        emotion = max(probs, key=lambda e: probs[e])
        reliability = min(1.0, voiced_s / FULL_RELIABILITY_S) ** 0.5
        if from_prior:
            reliability *= PRIOR_RELIABILITY
        confidence = probs[emotion] * reliability
        if update:
            self._update(features)
        return Estimate(
            features=features,
            z=z,
            arousal=arousal,
            valence=valence,
            emotion=emotion,
            confidence=confidence,
            energy_level=energy_for(arousal),
            probabilities=probs,
            from_prior=from_prior,
        )

    def estimate(
        self,
        pcm16: np.ndarray[Any, Any],
        rate: int,
        *,
        turn: int,
        t_start_s: float,
        t_end_s: float,
    ) -> EmotionReading | None:
        """The reading for one turn's audio; None when the turn has no speech."""
        est = self.assess(extract_features(pcm16, rate))
        return None if est is None else to_reading(est, turn, t_start_s, t_end_s)

    @staticmethod
    def report_args(pcm16: np.ndarray[Any, Any], rate: int) -> dict[str, object]:
        """Arguments for a `report_user_emotion` call about this audio (the emulator's answer).

        Judged against the prior alone, since the emulator keeps no speaker history.
        """
        est = AcousticEstimator().assess(extract_features(pcm16, rate), update=False)
        if est is None:
            return {"emotion": Emotion.NEUTRAL.value, "confidence": 0.1, "energy_level": "low"}
        return {
            "emotion": est.emotion.value,
            "confidence": round(est.confidence, 2),
            "energy_level": est.energy_level.value,
        }


def to_reading(est: Estimate, turn: int, t_start_s: float, t_end_s: float) -> EmotionReading:
    return EmotionReading(
        turn=turn,
        source=Source.ACOUSTIC,
        t_start_s=t_start_s,
        t_end_s=t_end_s,
        emotion=est.emotion,
        confidence=est.confidence,
        energy_level=est.energy_level,
        arousal=est.arousal,
        valence=est.valence,
    )
