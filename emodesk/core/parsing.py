"""Reading the model's emotion report: `report_user_emotion` call arguments, or a JSON
header at the start of a text reply.

Models are loose with formats, so the parser tolerates what a careful reader would:

- labels in any capitalisation, with surrounding spaces or punctuation, and common
  synonyms (see `LABEL_SYNONYMS`). "upset" is read as sad: in the reply texts we saw it
  describes distress more than anger, and anger has its own unambiguous words.
  "confused" is read as anxious and "bored" as sad, matching what the tutor profile's
  emotion rules ask the model to report;
- confidence as a fraction (0.8), a percentage (80, "80%", "80 %") or a numeric string
  ("0.8"). Numbers above 1 and up to 100 are percentages, so 1.5 means 1.5 %;
- a missing or null energy level, which is read as medium (the model often omits it when
  it has no opinion, and medium is the neutral middle);
- key spellings: "energy_level", "energyLevel", "energy"; "emotion" or "label";
  "confidence" or "score"; extra keys are ignored.

Anything else (unknown labels, NaN, booleans, nested junk) raises `EmotionParseError`
whose message is the reason. No input raises any other exception.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from emodesk.core.emotion import Emotion, EmotionReading, EnergyLevel, Source

# Longest label or number text we try to read; longer values are junk, not a label.
_MAX_TOKEN_CHARS = 64
# A header is a small JSON object; we never scan further into a reply than this.
_MAX_HEADER_CHARS = 4096


class EmotionParseError(ValueError):
    """The emotion report is there but cannot be read; the message says why."""


LABEL_SYNONYMS: Mapping[str, Emotion] = MappingProxyType(
    {
        **{word: Emotion.HAPPY for word in (
            "happy", "happiness", "joy", "joyful", "excited", "glad", "cheerful",
            "content", "pleased", "delighted", "amused", "positive",
        )},
        **{word: Emotion.SAD for word in (
            "sad", "sadness", "down", "upset", "unhappy", "disappointed", "gloomy",
            "depressed", "melancholy", "bored", "tired", "dejected",
        )},
        **{word: Emotion.ANGRY for word in (
            "angry", "anger", "frustrated", "frustration", "annoyed", "irritated",
            "mad", "furious", "irate",
        )},
        **{word: Emotion.ANXIOUS for word in (
            "anxious", "anxiety", "worried", "nervous", "stressed", "afraid", "scared",
            "fearful", "fear", "tense", "confused", "uneasy",
        )},
        **{word: Emotion.NEUTRAL for word in (
            "neutral", "calm", "none", "normal", "relaxed", "flat",
        )},
    }
)  # fmt: skip

ENERGY_SYNONYMS: Mapping[str, EnergyLevel] = MappingProxyType(
    {
        "high": EnergyLevel.HIGH,
        "hi": EnergyLevel.HIGH,
        "medium": EnergyLevel.MEDIUM,
        "med": EnergyLevel.MEDIUM,
        "mid": EnergyLevel.MEDIUM,
        "moderate": EnergyLevel.MEDIUM,
        "normal": EnergyLevel.MEDIUM,
        "low": EnergyLevel.LOW,
        "lo": EnergyLevel.LOW,
    }
)

# Normalised key (lower case, letters and digits only) -> field.
_EMOTION_KEYS = ("emotion", "label", "useremotion")
_CONFIDENCE_KEYS = ("confidence", "score")
_ENERGY_KEYS = ("energylevel", "energy")


@dataclass(frozen=True, slots=True)
class ParsedEmotion:
    """A readable emotion report, not yet placed in time."""

    emotion: Emotion
    confidence: float
    energy_level: EnergyLevel

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "emotion", Emotion(self.emotion))
            object.__setattr__(self, "energy_level", EnergyLevel(self.energy_level))
        except ValueError as exc:
            raise EmotionParseError(str(exc)) from None
        confidence = self.confidence
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not 0.0 <= confidence <= 1.0
        ):
            raise EmotionParseError(f"confidence must be a number in [0, 1], got {confidence!r}")
        object.__setattr__(self, "confidence", float(confidence))

    def to_reading(
        self,
        *,
        turn: int,
        source: Source,
        t_start_s: float,
        t_end_s: float,
        utc: datetime | None = None,
    ) -> EmotionReading:
        """The reading for one turn; `InvalidReading` if the turn or times are bad."""
        if utc is None:
            return EmotionReading(
                turn=turn,
                source=source,
                t_start_s=t_start_s,
                t_end_s=t_end_s,
                emotion=self.emotion,
                confidence=self.confidence,
                energy_level=self.energy_level,
            )
        return EmotionReading(
            turn=turn,
            source=source,
            t_start_s=t_start_s,
            t_end_s=t_end_s,
            emotion=self.emotion,
            confidence=self.confidence,
            energy_level=self.energy_level,
            utc=utc,
        )


def _normalise_key(key: str) -> str:
    return "".join(ch for ch in key.lower() if ch.isascii() and ch.isalnum())


def _normalise_word(text: str) -> str:
    return text.strip().strip(".,;:!?\"'`()[]{}").strip().lower()


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_label(value: object) -> Emotion:
    """One of the five labels from a label or a known synonym."""
    if not isinstance(value, str):
        raise EmotionParseError(f"emotion must be text, got {type(value).__name__}")
    if len(value) > _MAX_TOKEN_CHARS:
        raise EmotionParseError(f"emotion label is too long ({len(value)} characters)")
    word = _normalise_word(value)
    if not word:
        raise EmotionParseError("emotion label is empty")
    try:
        return LABEL_SYNONYMS[word]
    except KeyError:
        raise EmotionParseError(f"unknown emotion label {_describe(value)}") from None


def parse_energy(value: object) -> EnergyLevel:
    """An energy level; None (missing) is medium."""
    if value is None:
        return EnergyLevel.MEDIUM
    if not isinstance(value, str):
        raise EmotionParseError(f"energy_level must be text, got {type(value).__name__}")
    if len(value) > _MAX_TOKEN_CHARS:
        raise EmotionParseError(f"energy_level is too long ({len(value)} characters)")
    word = _normalise_word(value)
    if not word:
        return EnergyLevel.MEDIUM
    try:
        return ENERGY_SYNONYMS[word]
    except KeyError:
        raise EmotionParseError(f"unknown energy_level {_describe(value)}") from None


_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_confidence(value: object) -> float:
    """A confidence in [0, 1] from a fraction, a percentage or a numeric string."""
    if isinstance(value, bool):
        raise EmotionParseError("confidence must be a number, got bool")
    percent_sign = False
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TOKEN_CHARS:
            raise EmotionParseError(f"confidence is too long ({len(text)} characters)")
        if text.endswith("%"):
            percent_sign = True
            text = text[:-1].strip()
        if not _NUMBER_TEXT.fullmatch(text):
            raise EmotionParseError(f"confidence is not a number: {_describe(value)}")
        number = float(text)
    elif isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise EmotionParseError("confidence is out of range") from None
    else:
        raise EmotionParseError(f"confidence must be a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise EmotionParseError(f"confidence must be finite, got {_describe(value)}")
    if number < 0:
        raise EmotionParseError(f"confidence must not be negative, got {_describe(value)}")
    if percent_sign or number > 1:
        if number > 100:
            raise EmotionParseError(f"confidence above 100 %: {_describe(value)}")
        number /= 100
    return number


def _field(args: Mapping[object, object], names: tuple[str, ...]) -> tuple[bool, object]:
    """The value of the first of `names` (in that order of preference) that is present."""
    present = {_normalise_key(key): value for key, value in args.items() if isinstance(key, str)}
    for name in names:
        if name in present:
            return True, present[name]
    return False, None


def parse_emotion_args(args: Mapping[str, object]) -> ParsedEmotion:
    """The arguments of a `report_user_emotion` call (or a decoded JSON header)."""
    if not isinstance(args, Mapping):
        raise EmotionParseError(f"emotion report must be an object, got {type(args).__name__}")
    try:
        items: Mapping[object, object] = dict(args.items())
    except Exception as exc:  # a broken Mapping implementation is still bad input
        raise EmotionParseError(f"emotion report cannot be read: {type(exc).__name__}") from None
    found, label = _field(items, _EMOTION_KEYS)
    if not found:
        raise EmotionParseError("emotion is missing")
    emotion = parse_label(label)
    found, confidence_value = _field(items, _CONFIDENCE_KEYS)
    if not found or confidence_value is None:
        raise EmotionParseError("confidence is missing")
    confidence = parse_confidence(confidence_value)
    _, energy_value = _field(items, _ENERGY_KEYS)
    energy = parse_energy(energy_value)
    return ParsedEmotion(emotion=emotion, confidence=confidence, energy_level=energy)


_FENCE_OPEN = re.compile(r"\s*```[ \t]*(?:json|JSON|Json)?[ \t]*\r?\n?")
_FENCE_CLOSE = re.compile(r"\s*```[ \t]*")


def _has_header(text: str) -> bool:
    head = text.lstrip()
    return head.startswith("{") or head.startswith("```")


def parse_emotion_header(text: str) -> tuple[ParsedEmotion, str]:
    """The emotion JSON at the head of a text reply, and the rest of the reply.

    The header is a JSON object, optionally in a ``` or ```json code fence. The rest
    is returned without its leading whitespace. Raises `EmotionParseError` when there is
    no header or it cannot be read.
    """
    if not isinstance(text, str):
        raise EmotionParseError(f"reply must be text, got {type(text).__name__}")
    if not _has_header(text):
        raise EmotionParseError("the reply does not start with an emotion header")
    fence = _FENCE_OPEN.match(text)
    position = fence.end() if fence else len(text) - len(text.lstrip())
    position += len(text[position:]) - len(text[position:].lstrip())
    if not text.startswith("{", position):
        raise EmotionParseError("the code fence does not hold a JSON object")
    if position >= _MAX_HEADER_CHARS:
        raise EmotionParseError("the emotion header starts too far into the reply")
    window = text[: position + _MAX_HEADER_CHARS]
    try:
        decoded, end = json.JSONDecoder().raw_decode(window, position)
    except json.JSONDecodeError as exc:
        raise EmotionParseError(f"the emotion header is not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise EmotionParseError("the emotion header is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts
        raise EmotionParseError(f"the emotion header cannot be read: {exc}") from None
    if not isinstance(decoded, dict):
        raise EmotionParseError("the emotion header is not a JSON object")
    if fence:
        close = _FENCE_CLOSE.match(text, end)
        if close is None:
            raise EmotionParseError("the code fence around the emotion header is not closed")
        end = close.end()
    parsed = parse_emotion_args(decoded)
    return parsed, text[end:].lstrip()


def split_emotion_header(text: str) -> tuple[ParsedEmotion | None, str]:
    """(emotion, rest of the reply) when the reply starts with a readable header,
    otherwise (None, the reply unchanged). Use `parse_emotion_header` for the reason."""
    try:
        return parse_emotion_header(text)
    except EmotionParseError:
        return None, text
