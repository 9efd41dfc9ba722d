import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from emodesk.core.emotion import Emotion, EmotionReading, EnergyLevel, InvalidReading, Source


def reading(**overrides: object) -> EmotionReading:
    fields: dict[str, object] = {
        "turn": 1,
        "source": "model",
        "t_start_s": 0.0,
        "t_end_s": 2.0,
        "emotion": "happy",
        "confidence": 0.8,
        "energy_level": "high",
    }
    fields.update(overrides)
    return EmotionReading(**fields)  # type: ignore[arg-type]


def test_strings_become_enums() -> None:
    r = reading()
    assert r.source is Source.MODEL
    assert r.emotion is Emotion.HAPPY
    assert r.energy_level is EnergyLevel.HIGH


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("emotion", "furious"),
        ("source", "guess"),
        ("energy_level", "extreme"),
        ("confidence", math.nan),
        ("confidence", math.inf),
        ("arousal", math.nan),
        ("t_start_s", -1.0),
        ("t_end_s", -0.5),
        ("turn", -1),
        ("turn", True),
        ("confidence", "0.5"),
        ("confidence", 42.0),
        ("arousal", -99.0),
        ("valence", 2.5),
    ],
)
def test_rejects_unreadable_values(field: str, value: object) -> None:
    with pytest.raises(InvalidReading):
        reading(**{"source": "acoustic", field: value})


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("confidence", 1.3, 1.0),
        ("confidence", -0.1, 0.0),
        ("arousal", 1.5, 1.0),
        ("valence", -2.0, -1.0),
    ],
)
def test_clamps_slightly_out_of_range_numbers(field: str, value: float, expected: float) -> None:
    assert getattr(reading(**{"source": "acoustic", field: value}), field) == expected


def test_utc_must_be_aware_and_is_normalised() -> None:
    with pytest.raises(InvalidReading):
        reading(utc=datetime(2026, 1, 1))
    plus_two = timezone(timedelta(hours=2))
    r = reading(utc=datetime(2026, 1, 1, 12, tzinfo=plus_two))
    assert r.utc == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert r.utc.tzinfo is UTC


def test_negative_labels() -> None:
    assert reading(emotion="sad").is_negative
    assert not reading(emotion="neutral").is_negative


def test_a_model_reading_has_no_arousal_or_valence() -> None:
    r = reading(source="model", arousal=0.2, valence=-0.4)
    assert (r.arousal, r.valence) == (None, None)
