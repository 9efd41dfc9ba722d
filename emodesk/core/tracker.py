"""The emotion tracker: a trend over the last turns and an escalation flag.

The rule, in words:

- Every reading has a polarity: +1 for a negative label (sad, angry, anxious), 0 for
  neutral, -1 for happy. Its evidence weight is its confidence times its source's weight
  (`FusionRule`): the model's label counts fully, the acoustic estimator's label half,
  because valence from prosody alone is weak.
- A turn may have one reading per source; a newer reading for the same turn and source
  replaces the older one. The window is the `window` most recent turns.
- The negativity score of a set of turns is sum(weight * polarity) / (sum(weight) +
  `prior_weight`). The prior is a small amount of neutral evidence, so a lone
  low-confidence reading moves the score little while several confident ones move it
  almost fully.
- Trend (once at least `min_readings` distinct turns are in the window):
  PERSISTENT_NEGATIVE when both the whole window and its newer half score at or above
  `persistent_above`; otherwise WORSENING / IMPROVING when the newer half's weighted mean
  polarity (without the prior) is at least `change_by` above / below the older half's;
  otherwise STABLE.
- Escalation has hysteresis: it turns on when the window score reaches `escalate_on` and
  turns off only when it falls below `release_below`, so alternating turns do not flap.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from emodesk.core.emotion import Emotion, EmotionReading, Source


class Trend(StrEnum):
    INSUFFICIENT_DATA = "insufficient_data"
    PERSISTENT_NEGATIVE = "persistent_negative"
    IMPROVING = "improving"
    WORSENING = "worsening"
    STABLE = "stable"


@dataclass(frozen=True, slots=True)
class TrackerVerdict:
    trend: Trend
    escalate: bool


@dataclass(frozen=True, slots=True)
class FusionRule:
    """How much one reading's label counts, per source, before its confidence."""

    model_weight: float = 1.0
    acoustic_weight: float = 0.5
    prior_weight: float = 0.5

    def __post_init__(self) -> None:
        for name in ("model_weight", "acoustic_weight", "prior_weight"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 10.0:
                raise ValueError(f"{name} must be a number in [0, 10], got {value!r}")
        if self.model_weight == 0 and self.acoustic_weight == 0:
            raise ValueError("at least one source must have a weight above 0")

    def weight(self, reading: EmotionReading) -> float:
        source_weight = (
            self.model_weight if reading.source is Source.MODEL else self.acoustic_weight
        )
        return source_weight * reading.confidence


def polarity(emotion: Emotion) -> float:
    """+1 negative, 0 neutral, -1 happy."""
    if emotion is Emotion.HAPPY:
        return -1.0
    if emotion is Emotion.NEUTRAL:
        return 0.0
    return 1.0


DEFAULT_FUSION = FusionRule()
# The trend is judged over this many recent turns.
TREND_WINDOW_TURNS = 6
INSUFFICIENT = TrackerVerdict(Trend.INSUFFICIENT_DATA, escalate=False)


class EmotionTracker:
    """Turns a stream of readings into a trend and an escalation flag."""

    def __init__(
        self,
        window: int = TREND_WINDOW_TURNS,
        min_readings: int = 3,
        fuse: FusionRule = DEFAULT_FUSION,
        escalate_on: float = 0.6,
        release_below: float = 0.3,
        *,
        persistent_above: float = 0.5,
        change_by: float = 0.3,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        if (
            isinstance(min_readings, bool)
            or not isinstance(min_readings, int)
            or not 1 <= min_readings <= window
        ):
            raise ValueError(f"min_readings must be in [1, window], got {min_readings!r}")
        if not isinstance(fuse, FusionRule):
            raise TypeError(f"fuse must be a FusionRule, got {type(fuse).__name__}")
        if not -1.0 <= release_below < escalate_on <= 1.0:
            raise ValueError(
                "need -1 <= release_below < escalate_on <= 1, "
                f"got release_below={release_below!r}, escalate_on={escalate_on!r}"
            )
        if not 0.0 < change_by <= 2.0 or not -1.0 <= persistent_above <= 1.0:
            raise ValueError("change_by must be in (0, 2] and persistent_above in [-1, 1]")
        self._window = window
        self._min_turns = min_readings
        self._fuse = fuse
        self._escalate_on = escalate_on
        self._release_below = release_below
        self._persistent_above = persistent_above
        self._change_by = change_by
        self._turns: dict[int, dict[Source, EmotionReading]] = {}
        self._escalated = False
        self._verdict = INSUFFICIENT

    @property
    def verdict(self) -> TrackerVerdict:
        return self._verdict

    @property
    def score(self) -> float:
        """The window's negativity score in [-1, 1] (0 with no readings)."""
        return self._score(sorted(self._turns))

    def reset(self) -> None:
        self._turns.clear()
        self._escalated = False
        self._verdict = INSUFFICIENT

    def add(self, reading: EmotionReading) -> TrackerVerdict:
        if not isinstance(reading, EmotionReading):
            raise TypeError(f"expected an EmotionReading, got {type(reading).__name__}")
        turns = sorted(self._turns)
        if len(turns) >= self._window and reading.turn < turns[0]:
            return self._verdict  # older than anything in the window: no influence
        self._turns.setdefault(reading.turn, {})[reading.source] = reading
        for stale in sorted(self._turns)[: -self._window]:
            del self._turns[stale]
        self._verdict = self._judge()
        return self._verdict

    def _score(self, turns: list[int], prior: float | None = None) -> float:
        """sum(weight * polarity) / (sum(weight) + prior) over `turns`; the fusion rule's
        prior unless told otherwise (0: the plain weighted mean). 0 with no weight."""
        weighted = 0.0
        total = self._fuse.prior_weight if prior is None else prior
        for turn in turns:
            for reading in self._turns[turn].values():
                weight = self._fuse.weight(reading)
                weighted += weight * polarity(reading.emotion)
                total += weight
        return weighted / total if total > 0 else 0.0

    def _judge(self) -> TrackerVerdict:
        turns = sorted(self._turns)
        if len(turns) < self._min_turns:
            return INSUFFICIENT
        overall = self._score(turns)
        if self._escalated:
            self._escalated = overall >= self._release_below
        else:
            self._escalated = overall >= self._escalate_on
        older, newer = turns[: len(turns) // 2], turns[len(turns) // 2 :]
        newer_score = self._score(newer)
        # The halves are compared by their plain weighted means: the prior would pull a
        # half with little evidence yet (the newest turn before its model reading) toward
        # neutral and read as a change that is not there.
        change = self._score(newer, prior=0.0) - self._score(older, prior=0.0)
        if overall >= self._persistent_above and newer_score >= self._persistent_above:
            trend = Trend.PERSISTENT_NEGATIVE
        elif change >= self._change_by:
            trend = Trend.WORSENING
        elif change <= -self._change_by:
            trend = Trend.IMPROVING
        else:
            trend = Trend.STABLE
        return TrackerVerdict(trend, self._escalated)
