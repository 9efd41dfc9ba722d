import json
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emodesk.core.emotion import Emotion, EnergyLevel, InvalidReading, Source
from emodesk.core.parsing import (
    EmotionParseError,
    ParsedEmotion,
    parse_confidence,
    parse_emotion_args,
    parse_emotion_header,
    split_emotion_header,
)

GOOD = {"emotion": "angry", "confidence": 0.7, "energy_level": "high"}


def args(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = dict(GOOD)
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not ...}


def test_reads_a_well_formed_call() -> None:
    assert parse_emotion_args(GOOD) == ParsedEmotion(Emotion.ANGRY, 0.7, EnergyLevel.HIGH)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("HAPPY", Emotion.HAPPY),
        ("  Sad. ", Emotion.SAD),
        ("frustrated", Emotion.ANGRY),
        ("Annoyed", Emotion.ANGRY),
        ("worried", Emotion.ANXIOUS),
        ("nervous", Emotion.ANXIOUS),
        ("stressed", Emotion.ANXIOUS),
        ("joyful", Emotion.HAPPY),
        ("excited", Emotion.HAPPY),
        ("down", Emotion.SAD),
        ("upset", Emotion.SAD),  # documented choice: distress rather than anger
        ("confused", Emotion.ANXIOUS),  # the tutor profile's mapping
        ("bored", Emotion.SAD),
        ("calm", Emotion.NEUTRAL),
    ],
)
def test_label_synonyms_and_capitalisation(label: str, expected: Emotion) -> None:
    assert parse_emotion_args(args(emotion=label)).emotion is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.8, 0.8),
        (0, 0.0),
        (1, 1.0),
        (80, 0.8),
        ("80%", 0.8),
        ("80 %", 0.8),
        ("0.8", 0.8),
        (" 0.25 ", 0.25),
        ("100", 1.0),
        ("1%", 0.01),
        (1.5, 0.015),  # above 1 means a percentage
    ],
)
def test_confidence_forms(value: object, expected: float) -> None:
    assert parse_emotion_args(args(confidence=value)).confidence == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (math.nan, "finite"),
        (math.inf, "finite"),
        ("nan", "not a number"),
        (-0.1, "negative"),
        (101, "above 100"),
        ("150%", "above 100"),
        (True, "bool"),
        ("high", "not a number"),
        ("", "not a number"),
        ([0.5], "list"),
        ({"value": 0.5}, "dict"),
        (None, "missing"),
        (10**400, "out of range"),
        ("9" * 500, "too long"),
    ],
)
def test_unreadable_confidence_says_why(value: object, reason: str) -> None:
    with pytest.raises(EmotionParseError, match=reason):
        parse_emotion_args(args(confidence=value))


def test_missing_energy_level_is_medium() -> None:
    assert parse_emotion_args(args(energy_level=...)).energy_level is EnergyLevel.MEDIUM
    assert parse_emotion_args(args(energy_level=None)).energy_level is EnergyLevel.MEDIUM


def test_energy_level_spellings_and_key_variants() -> None:
    parsed = parse_emotion_args({"Emotion": "Sad", "Confidence": 0.4, "energyLevel": "LOW"})
    assert parsed == ParsedEmotion(Emotion.SAD, 0.4, EnergyLevel.LOW)
    assert parse_emotion_args(args(energy_level="moderate")).energy_level is EnergyLevel.MEDIUM


def test_extra_keys_are_ignored() -> None:
    parsed = parse_emotion_args({**GOOD, "reason": "raised voice", "nested": {"x": [1]}})
    assert parsed.emotion is Emotion.ANGRY


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (args(emotion="furious-ish"), "unknown emotion label"),
        (args(emotion=""), "empty"),
        (args(emotion=3), "must be text"),
        (args(emotion=["happy"]), "must be text"),
        (args(emotion="x" * 10_000), "too long"),
        (args(emotion=...), "emotion is missing"),
        (args(confidence=...), "confidence is missing"),
        (args(energy_level="extreme"), "unknown energy_level"),
        (args(energy_level=7), "must be text"),
        ({}, "emotion is missing"),
    ],
)
def test_unreadable_reports_say_why(bad: dict[str, object], reason: str) -> None:
    with pytest.raises(EmotionParseError, match=reason):
        parse_emotion_args(bad)


def test_not_a_mapping_is_a_parse_error() -> None:
    with pytest.raises(EmotionParseError, match="object"):
        parse_emotion_args(["emotion", "happy"])  # type: ignore[arg-type]


class BrokenMapping(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        raise RuntimeError("broken")

    def __iter__(self) -> Iterator[str]:
        yield "emotion"

    def __len__(self) -> int:
        return 1


def test_a_mapping_that_fails_to_read_is_a_parse_error() -> None:
    with pytest.raises(EmotionParseError, match="cannot be read"):
        parse_emotion_args(BrokenMapping())


def test_to_reading_places_the_estimate_in_time() -> None:
    moment = datetime(2026, 11, 22, 8, tzinfo=UTC)
    reading = parse_emotion_args(GOOD).to_reading(
        turn=3, source=Source.MODEL, t_start_s=1.0, t_end_s=2.5, utc=moment
    )
    assert (reading.turn, reading.source, reading.emotion) == (3, Source.MODEL, Emotion.ANGRY)
    assert (reading.confidence, reading.utc, reading.arousal) == (0.7, moment, None)
    with pytest.raises(InvalidReading):
        parse_emotion_args(GOOD).to_reading(turn=3, source=Source.MODEL, t_start_s=2.0, t_end_s=1.0)


HEADER = '{"emotion": "worried", "confidence": "60%", "energy_level": "low"}'
EXPECTED = ParsedEmotion(Emotion.ANXIOUS, 0.6, EnergyLevel.LOW)


@pytest.mark.parametrize(
    "reply",
    [
        f"{HEADER}\nLet's take it slowly.",
        f"  {HEADER} Let's take it slowly.",
        f"```json\n{HEADER}\n```\nLet's take it slowly.",
        f"```\n{HEADER}\n```\n\nLet's take it slowly.",
        f"```JSON {HEADER} ``` Let's take it slowly.",
    ],
)
def test_header_at_the_head_of_a_reply(reply: str) -> None:
    assert split_emotion_header(reply) == (EXPECTED, "Let's take it slowly.")
    assert parse_emotion_header(reply) == (EXPECTED, "Let's take it slowly.")


def test_header_with_braces_inside_strings_and_no_rest() -> None:
    reply = '{"emotion": "happy", "confidence": 1, "note": "a } brace"}'
    assert split_emotion_header(reply) == (
        ParsedEmotion(Emotion.HAPPY, 1.0, EnergyLevel.MEDIUM),
        "",
    )


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("Hello! How can I help?", "does not start"),
        ("", "does not start"),
        ('{"emotion": "happy", "confidence": 0.5', "not valid JSON"),
        ('{"emotion": "elated", "confidence": 0.5} hi', "unknown emotion label"),
        ("```json\n[1, 2]\n```", "does not hold a JSON object"),
        ('```json\n{"emotion": "sad", "confidence": 0.5}\nno closing fence', "not closed"),
        ("[" * 100_000, "does not start"),
        ("{" + '"a":[' * 5000 + "]" * 5000 + "}", "not valid JSON"),  # cut at the size limit
        ('{"a": ' + "[" * 1500 + "]" * 1500 + "}", "nested too deeply"),
        ('{"emotion": "sad", "confidence": ' + "1" * 4000 + "}", "out of range"),
        (" " * 5000 + '{"emotion": "sad", "confidence": 0.5}', "too far"),
    ],
)
def test_unreadable_header_keeps_the_reply_and_says_why(reply: str, reason: str) -> None:
    assert split_emotion_header(reply) == (None, reply)
    with pytest.raises(EmotionParseError, match=reason):
        parse_emotion_header(reply)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["happy", "Frustrated", "80%", "0.5", "nan", "-1", "1e999", "low"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
report_keys = st.sampled_from(
    ["emotion", "confidence", "energy_level", "Emotion", "energyLevel", "score", "label", "x"]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(report_keys | st.text(max_size=8), json_values, max_size=5))
def test_any_mapping_parses_or_raises_a_parse_error(values: dict[str, object]) -> None:
    try:
        parsed = parse_emotion_args(values)
    except EmotionParseError as exc:
        assert str(exc)
    else:
        assert 0.0 <= parsed.confidence <= 1.0
        assert isinstance(parsed.emotion, Emotion)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda value, fence, rest: (
                (f"```json\n{json.dumps(value)}\n```" if fence else json.dumps(value)) + rest
            ),
            st.dictionaries(report_keys, json_values, max_size=4),
            st.booleans(),
            st.text(max_size=40),
        ),
    )
)
def test_any_text_splits_or_raises_a_parse_error(text: str) -> None:
    parsed, rest = split_emotion_header(text)
    if parsed is None:
        assert rest == text
    else:
        assert len(rest) < len(text)
    try:
        parse_emotion_header(text)
    except EmotionParseError as exc:
        assert str(exc)


@given(st.floats(min_value=0.0, max_value=1.0))
def test_fractions_pass_through_unchanged(value: float) -> None:
    assert parse_confidence(value) == value
    assert parse_confidence(repr(value)) == value


def test_preferred_key_wins_over_an_alias_whatever_the_order() -> None:
    assert parse_emotion_args({"label": "sad", **GOOD}).emotion is Emotion.ANGRY
    assert parse_emotion_args({"score": 0.1, **GOOD}).confidence == 0.7


@pytest.mark.parametrize(
    "fields",
    [
        {"emotion": "elated", "confidence": 0.5, "energy_level": "low"},
        {"emotion": "sad", "confidence": 1.5, "energy_level": "low"},
        {"emotion": "sad", "confidence": math.nan, "energy_level": "low"},
        {"emotion": "sad", "confidence": True, "energy_level": "low"},
        {"emotion": "sad", "confidence": 0.5, "energy_level": "loud"},
    ],
)
def test_a_parsed_emotion_cannot_be_built_from_bad_values(fields: dict[str, object]) -> None:
    with pytest.raises(EmotionParseError):
        ParsedEmotion(**fields)  # type: ignore[arg-type]
    assert ParsedEmotion("sad", 1, "low").confidence == 1.0  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["happy", "Sad", "FRUSTRATED", "worried", "calm"]),
    st.one_of(st.floats(0, 1), st.integers(0, 100), st.sampled_from(["80%", "0.5", "100"])),
    st.sampled_from([None, "high", "Medium", "low"]),
    st.booleans(),
    st.text(max_size=60),
)
def test_a_readable_header_always_splits_from_any_rest(
    label: str, confidence: object, energy: str | None, fenced: bool, rest: str
) -> None:
    header = json.dumps({"emotion": label, "confidence": confidence, "energy_level": energy})
    reply = (f"```json\n{header}\n```" if fenced else header) + "\n" + rest
    parsed, remainder = split_emotion_header(reply)
    assert parsed is not None
    # The expected values stated by hand, not read back through the parser: the labels
    # and energies as the synonym table above names them (no energy_level is medium).
    assert parsed.emotion is HEADER_LABELS[label]
    assert parsed.energy_level is HEADER_ENERGIES[energy]
    assert 0.0 <= parsed.confidence <= 1.0
    assert remainder == rest.lstrip()


HEADER_LABELS = {
    "happy": Emotion.HAPPY,
    "Sad": Emotion.SAD,
    "FRUSTRATED": Emotion.ANGRY,
    "worried": Emotion.ANXIOUS,
    "calm": Emotion.NEUTRAL,
}
HEADER_ENERGIES = {
    None: EnergyLevel.MEDIUM,
    "high": EnergyLevel.HIGH,
    "Medium": EnergyLevel.MEDIUM,
    "low": EnergyLevel.LOW,
}


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(0.35, 0.35), (1, 1.0), (0, 0.0), (80, 0.8), (100, 1.0), ("80%", 0.8), ("0.5", 0.5)],
)
def test_a_headers_confidence_as_stated(confidence: object, expected: float) -> None:
    # By hand: a fraction 0-1 as it is; a number above 1 (or with %) is a percentage.
    header = json.dumps({"emotion": "calm", "confidence": confidence})
    parsed, _ = split_emotion_header(header + " ok")
    assert parsed is not None and parsed.confidence == pytest.approx(expected)
