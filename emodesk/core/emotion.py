"""The emotion reading: one estimate of the user's expression for one turn."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Emotion(StrEnum):
    HAPPY = "happy"
    SAD = "sad"
    ANGRY = "angry"
    ANXIOUS = "anxious"
    NEUTRAL = "neutral"


NEGATIVE_EMOTIONS = frozenset({Emotion.SAD, Emotion.ANGRY, Emotion.ANXIOUS})


class EnergyLevel(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Source(StrEnum):
    MODEL = "model"
    ACOUSTIC = "acoustic"


class InvalidReading(ValueError):
    """A reading that cannot be represented: unknown label, NaN, times out of order."""


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidReading(f"{name} must be a number, got {type(value).__name__}")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise InvalidReading(f"{name} must be finite, got {value!r}")
    return as_float


def _in_range(name: str, value: float, low: float, high: float, slack: float) -> float:
    """Clamp what is slightly out of range (rounding, a model's 1.05); refuse what is far
    out (a confidence of 42 is a different scale, not "very sure")."""
    if not low - slack <= value <= high + slack:
        raise InvalidReading(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return min(high, max(low, value))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EmotionReading:
    """One emotion estimate for one user turn.

    Confidence is clamped to [0, 1] and arousal/valence to [-1, 1] when slightly out of
    range (rounding and scaling; up to 0.5 and 1.0 beyond); further out, NaN,
    infinities, unknown labels and negative or reversed times are rejected with
    `InvalidReading`. Arousal and valence are None for the model source (dropped if
    given: the model reports a label, not coordinates).
    """

    turn: int
    source: Source
    t_start_s: float
    t_end_s: float
    emotion: Emotion
    confidence: float
    energy_level: EnergyLevel
    arousal: float | None = None
    valence: float | None = None
    utc: datetime = field(default_factory=_utc_now)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.turn, bool) or not isinstance(self.turn, int) or self.turn < 0:
            raise InvalidReading(f"turn must be a non-negative integer, got {self.turn!r}")
        try:
            set_(self, "source", Source(self.source))
        except ValueError as exc:
            raise InvalidReading(f"unknown source {self.source!r}") from exc
        try:
            set_(self, "emotion", Emotion(self.emotion))
        except ValueError as exc:
            raise InvalidReading(f"unknown emotion {self.emotion!r}") from exc
        try:
            set_(self, "energy_level", EnergyLevel(self.energy_level))
        except ValueError as exc:
            raise InvalidReading(f"unknown energy level {self.energy_level!r}") from exc
        start = _finite("t_start_s", self.t_start_s)
        end = _finite("t_end_s", self.t_end_s)
        if start < 0:
            raise InvalidReading(f"t_start_s must be >= 0, got {start}")
        if end < start:
            raise InvalidReading(f"t_end_s ({end}) is before t_start_s ({start})")
        set_(self, "t_start_s", start)
        set_(self, "t_end_s", end)
        confidence = _finite("confidence", self.confidence)
        set_(self, "confidence", _in_range("confidence", confidence, 0.0, 1.0, 0.5))
        for name in ("arousal", "valence"):
            value = getattr(self, name)
            if value is None:
                continue
            if self.source is Source.MODEL:
                # The design leaves them empty for the model: it reports a label only.
                set_(self, name, None)
                continue
            set_(self, name, _in_range(name, _finite(name, value), -1.0, 1.0, 1.0))
        if not isinstance(self.utc, datetime) or self.utc.tzinfo is None:
            raise InvalidReading("utc must be a timezone-aware datetime")
        set_(self, "utc", self.utc.astimezone(UTC))

    @property
    def is_negative(self) -> bool:
        return self.emotion in NEGATIVE_EMOTIONS
