"""The app's settings as plain data. The UI persists them (QSettings), which hands
values back as text, so `from_mapping` reads "true"/"60" as well as True/60, and any bad
value falls back to its default: a settings file edited by hand must not stop the app."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from emodesk.core.consent import ConsentRecord
from emodesk.core.profiles import PROFILES, clean_language

# The prebuilt Gemini Live voices.
VOICES: tuple[str, ...] = (
    "Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr",
    "Achernar", "Achird", "Algenib", "Algieba", "Alnilam", "Autonoe", "Callirrhoe",
    "Despina", "Enceladus", "Erinome", "Gacrux", "Iapetus", "Laomedeia", "Pulcherrima",
    "Rasalgethi", "Sadachbia", "Sadaltager", "Schedar", "Sulafat", "Umbriel",
    "Vindemiatrix", "Zubenelgenubi",
)  # fmt: skip
FEATURED_VOICES: tuple[str, ...] = ("Aoede", "Kore", "Puck")

ECHO_MODES: tuple[str, ...] = ("half_duplex", "full_duplex_aec")
VAD_SENSITIVITIES: tuple[str, ...] = ("high", "low")
PLAYOUT_BUFFER_RANGE_MS = (10, 60)  # the design's budget: at most 60 ms
FRAME_MS_CHOICES: tuple[int, ...] = (10, 20, 30, 40)  # smaller: less latency, more packets
FRAME_MS_RANGE = (min(FRAME_MS_CHOICES), max(FRAME_MS_CHOICES))
VAD_SILENCE_RANGE_MS = (100, 3000)  # hands-free: the pause that ends a turn
RETENTION_RANGE_DAYS = (0, 3650)
_MAX_TEXT = 256
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class AppSettings:
    model: str = "gemini-3.1-flash-live-preview"
    voice: str = "Puck"
    profile: str = "general"
    language: str = "English"
    push_to_talk_key: str = "Space"
    hands_free: bool = False
    vad_sensitivity: str = "high"
    vad_silence_ms: int = 500
    playout_buffer_ms: int = 60
    echo_mode: str = "half_duplex"
    input_device: str = ""  # "" = the system default
    output_device: str = ""
    frame_ms: int = 20
    noise_gate: bool = False
    normalize: bool = False
    retention_days: int = 30  # 0 = keep nothing after the session
    consent: ConsentRecord | None = None

    def validated(self) -> AppSettings:
        """A copy with every bad value replaced by its default."""
        return parse_settings(self.to_mapping())[0]

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> AppSettings:
        return parse_settings(values)[0]

    def to_mapping(self) -> dict[str, object]:
        """Flat values for a settings store; `from_mapping` reads them back."""
        flat: dict[str, object] = {
            item.name: getattr(self, item.name)
            for item in dataclasses.fields(self)
            if item.name != "consent"
        }
        if self.consent is not None:
            flat["consent_granted"] = self.consent.granted
            flat["consent_version"] = self.consent.version
            flat["consent_utc"] = self.consent.utc.isoformat()
        return flat

    @property
    def consent_given(self) -> bool:
        return self.consent is not None and self.consent.is_current


def _text(value: object, allowed: Callable[[str], bool] = lambda _: True) -> str | None:
    if not isinstance(value, str) or len(value) > _MAX_TEXT or not value.isprintable():
        return None
    return value if allowed(value) else None


def _bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def _int(value: object, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("+-").isdigit() or len(text) > 12:
            return None
        value = int(text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and low <= value <= high:
        return value
    return None


def _voice(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    by_lower = {voice.lower(): voice for voice in VOICES}
    return by_lower.get(value.strip().lower())


def _language(value: object) -> str | None:
    if not isinstance(value, str) or not value.isprintable():
        return None
    cleaned = clean_language(value)
    return cleaned if cleaned == " ".join(value.split()).rstrip(".").strip() else None


def _consent(values: Mapping[str, object]) -> tuple[ConsentRecord | None, bool]:
    """(record, was it readable). A nested "consent" record or the flat keys."""
    nested = values.get("consent")
    if isinstance(nested, ConsentRecord):
        return nested, True
    granted = values.get("consent_granted")
    if granted is None and nested is None:
        return None, True
    try:
        utc_text = values.get("consent_utc")
        version = values.get("consent_version")
        flag = _bool(granted)
        if flag is None or not isinstance(utc_text, str) or not isinstance(version, str):
            return None, False
        return ConsentRecord(flag, version, datetime.fromisoformat(utc_text)), True
    except ValueError:
        return None, False


def parse_settings(values: object) -> tuple[AppSettings, tuple[str, ...]]:
    """Settings from stored values, and the names of the values that were rejected
    (and replaced by defaults). Unknown keys are ignored; missing keys take defaults.
    An unreadable consent record becomes None (the app asks again); a record for an
    older consent text is kept, but `consent_given` is False for it."""
    defaults = AppSettings()
    if not isinstance(values, Mapping):
        return defaults, ("settings",)
    readers: dict[str, Callable[[object], object | None]] = {
        "model": lambda v: _text(v, lambda s: bool(s) and not any(c.isspace() for c in s)),
        "voice": _voice,
        "profile": lambda v: v if isinstance(v, str) and v in PROFILES else None,
        "language": _language,
        "push_to_talk_key": lambda v: _text(v, lambda s: 0 < len(s.strip()) <= 32),
        "hands_free": _bool,
        "vad_sensitivity": lambda v: v if v in VAD_SENSITIVITIES else None,
        "vad_silence_ms": lambda v: _int(v, *VAD_SILENCE_RANGE_MS),
        "playout_buffer_ms": lambda v: _int(v, *PLAYOUT_BUFFER_RANGE_MS),
        "echo_mode": lambda v: v if v in ECHO_MODES else None,
        "input_device": _text,
        "output_device": _text,
        "frame_ms": lambda v: n if (n := _int(v, *FRAME_MS_RANGE)) in FRAME_MS_CHOICES else None,
        "noise_gate": _bool,
        "normalize": _bool,
        "retention_days": lambda v: _int(v, *RETENTION_RANGE_DAYS),
    }
    chosen: dict[str, object] = {}
    rejected: list[str] = []
    for name, reader in readers.items():
        if name not in values:
            continue
        try:
            value = reader(values[name])
        except (ValueError, TypeError):
            value = None
        if value is None:
            rejected.append(name)
        else:
            chosen[name] = value
    consent, readable = _consent(values)
    if not readable:
        rejected.append("consent")
    elif consent is not None:
        chosen["consent"] = consent
    return dataclasses.replace(defaults, **chosen), tuple(rejected)  # type: ignore[arg-type]
