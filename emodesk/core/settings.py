"""The app's settings, each declared once, as data.

A `Setting` says everything about one setting: its key and default, how a stored value
is read (and which values are refused), its row in the settings dialog (page, label,
widget kind; the choices or the range come from its reader), what a change needs while
the app runs (`Effect`), and which audio-engine or Live field it feeds. The rest is
generated from `SETTINGS`:

- the stored form: `parse_settings` and `AppSettings.to_mapping`;
- the settings dialog's rows (`emodesk.ui.settings_dialog` makes a widget per kind);
- the audio engine's settings: `audio_engine_values`;
- what a change needs: `changes_needed` (the composition root asks it once per change).

`AppSettings` is the value the rest of the code holds: a frozen dataclass with one typed
field per declaration (same name and order, default from the declaration; a test checks
it), plus the consent record.

The UI persists settings with QSettings, which hands values back as text, so readers take
"true"/"60" as well as True/60, and any bad value falls back to its default: a settings
file edited by hand must not stop the app.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from emodesk.core.consent import ConsentRecord
from emodesk.core.profiles import PROFILES, clean_language

T = TypeVar("T")

# The prebuilt Gemini Live voices.
VOICES: tuple[str, ...] = (
    "Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr",
    "Achernar", "Achird", "Algenib", "Algieba", "Alnilam", "Autonoe", "Callirrhoe",
    "Despina", "Enceladus", "Erinome", "Gacrux", "Iapetus", "Laomedeia", "Pulcherrima",
    "Rasalgethi", "Sadachbia", "Sadaltager", "Schedar", "Sulafat", "Umbriel",
    "Vindemiatrix", "Zubenelgenubi",
)  # fmt: skip
FEATURED_VOICES: tuple[str, ...] = ("Aoede", "Kore", "Puck")
# The Live models the settings dialog offers (any other name can be typed in).
MODELS: tuple[str, ...] = (
    "gemini-3.1-flash-live-preview",
    "gemini-2.5-flash-native-audio-preview-12-2025",
)
# How the consent record is stored: flat keys beside the settings.
CONSENT_KEYS: tuple[str, ...] = ("consent_granted", "consent_version", "consent_utc")

_MAX_TEXT = 256
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


# ---------------------------------------------------------------- what a setting is


class Effect(Enum):
    """What a changed value needs while the app runs."""

    NOTHING = "nothing"  # read where it is used, when it is used (the push-to-talk key)
    INTENT = "intent"  # the running controller takes it as an intent, between turns
    RESTART_AUDIO = "restart audio"  # fixed when the audio engine opens its devices
    REBUILD = "rebuild"  # fixed when the controller is made
    RETENTION = "retention"  # the history is trimmed to it at once


class Page(Enum):
    """The settings dialog's pages, in tab order; the value is the tab's title."""

    CONVERSATION = "Conversation"
    AUDIO = "Audio"
    API_KEY = "API key"
    PRIVACY = "Privacy"


class Widget(Enum):
    """How a setting is edited; the ui makes one kind of Qt widget for each."""

    TEXT = "text"  # a line of text; left empty, the default
    MODEL = "model"  # a model: one of `MODELS`, or any name typed in
    CHOICE = "choice"  # one of its `Choice` reader's options
    NUMBER = "number"  # a whole number in its `WholeNumber` reader's range
    CHECK = "check"  # on or off
    KEY = "key"  # one key, pressed to set it
    DEVICE = "device"  # an audio device, listed when the dialog opens; "" = the default
    FOLDER = "folder"  # a folder, typed or chosen in a folder dialog; "" = none


@dataclass(frozen=True, slots=True)
class Row:
    """A setting's row in the settings dialog."""

    page: Page
    label: str
    widget: Widget
    suffix: str = ""  # NUMBER: the unit after the value (" ms")
    step: int = 1  # NUMBER: one click of the arrows
    lowest_text: str = ""  # NUMBER: shown instead of the lowest value
    text: str = ""  # CHECK: the box's own words
    tooltip: str = ""


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    key: str
    default: T
    # A stored value as this setting's value, or None when it cannot be used.
    read: Callable[[object], T | None]
    effect: Effect
    name: str  # as a sentence says it: "Applying the microphone, the model: ..."
    row: Row | None = None  # None: not in the settings dialog (the toolbar sets it)
    audio: str = ""  # the `AudioSettings` field it sets
    live: tuple[str, ...] = ()  # the `LiveSettings` fields it feeds, through the controller

    def parse(self, value: object) -> T | None:
        try:
            return self.read(value)
        except (ValueError, TypeError):
            return None

    @property
    def options(self) -> tuple[tuple[Any, str], ...]:
        """(value, title) of each option, for a setting read by a `Choice`; else ()."""
        return self.read.options if isinstance(self.read, Choice) else ()

    @property
    def bounds(self) -> tuple[int, int] | None:
        """(lowest, highest), for a setting read by a `WholeNumber`; else None."""
        read = self.read
        return (read.low, read.high) if isinstance(read, WholeNumber) else None


# ---------------------------------------------------------------- readers


@dataclass(frozen=True, slots=True)
class WholeNumber:
    """A whole number within [low, high]; "60", " 60 " and 60.0 are read as 60."""

    low: int
    high: int

    def __call__(self, value: object) -> int | None:
        return _int(value, self.low, self.high)


@dataclass(frozen=True, slots=True)
class Choice(Generic[T]):
    """One of `options` ((value, title) pairs). Numbers are read as `WholeNumber` reads
    them; with `fold_case`, text is matched ignoring case and surrounding space."""

    options: tuple[tuple[T, str], ...]
    fold_case: bool = False

    def __call__(self, value: object) -> T | None:
        return next((option for option, _ in self.options if self._is(option, value)), None)

    def _is(self, option: T, value: object) -> bool:
        if isinstance(option, int) and not isinstance(option, bool):
            return _int(value, option, option) == option
        if self.fold_case and isinstance(option, str) and isinstance(value, str):
            return value.strip().lower() == option.lower()
        return option == value


def _text(value: object, allowed: Callable[[str], bool] = lambda _: True) -> str | None:
    if not isinstance(value, str) or len(value) > _MAX_TEXT or not value.isprintable():
        return None
    return value if allowed(value) else None


def _flag(value: object) -> bool | None:
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


def _model_name(value: object) -> str | None:
    return _text(value, lambda s: bool(s) and not any(c.isspace() for c in s))


def _token_url(value: object) -> str | None:
    """Nothing (empty) or an https:// URL: what the service hands out is a secret."""
    text = _text(value)
    if text is None or not text.strip():
        return None if text is None else ""
    text = text.strip()
    usable = text.lower().startswith("https://") and len(text) > 8
    return text if usable and not any(c.isspace() for c in text) else None


def _folder(value: object) -> str | None:
    """A folder's path as written (checked when it is used: it may be unplugged now);
    "" for none."""
    return _text(value, lambda s: s.isprintable())


def _key_name(value: object) -> str | None:
    return _text(value, lambda s: 0 < len(s.strip()) <= 32)


def _language(value: object) -> str | None:
    if not isinstance(value, str) or not value.isprintable():
        return None
    cleaned = clean_language(value)
    return cleaned if cleaned == " ".join(value.split()).rstrip(".").strip() else None


# ---------------------------------------------------------------- the settings

_MS = " ms"

MODEL = Setting(
    "model", MODELS[0], _model_name, Effect.REBUILD, "the model",
    Row(Page.CONVERSATION, "Model", Widget.MODEL), live=("model",),
)  # fmt: skip
VOICE = Setting(
    "voice", "Puck", Choice(tuple((v, v) for v in VOICES), fold_case=True),
    Effect.INTENT, "the voice", live=("voice",),
)  # fmt: skip
LANGUAGE = Setting(
    "language", "English", _language, Effect.REBUILD, "the language",
    Row(Page.CONVERSATION, "Reply language", Widget.TEXT), live=("system_instruction",),
)  # fmt: skip
PROFILE = Setting(
    "profile", "general", Choice(tuple((key, p.title) for key, p in PROFILES.items())),
    Effect.INTENT, "the profile", Row(Page.CONVERSATION, "Profile", Widget.CHOICE),
    live=("system_instruction",),
)  # fmt: skip
PUSH_TO_TALK_KEY = Setting(
    "push_to_talk_key", "Space", _key_name, Effect.NOTHING, "the push-to-talk key",
    Row(Page.CONVERSATION, "Push-to-talk key", Widget.KEY),
)  # fmt: skip
HANDS_FREE = Setting(
    "hands_free", False, _flag, Effect.INTENT, "hands-free", live=("push_to_talk",),
)  # fmt: skip
VAD_SENSITIVITY = Setting(
    "vad_sensitivity", "high",
    Choice((("high", "High — reacts to quiet speech"), ("low", "Low — ignores background"))),
    Effect.INTENT, "the hands-free sensitivity",
    Row(Page.CONVERSATION, "Hands-free sensitivity", Widget.CHOICE),
    live=("vad_start_sensitivity", "vad_end_sensitivity"),
)  # fmt: skip
VAD_SILENCE_MS = Setting(
    "vad_silence_ms", 500, WholeNumber(100, 3000), Effect.INTENT, "the hands-free pause",
    Row(Page.CONVERSATION, "Hands-free pause that ends a turn", Widget.NUMBER, _MS, step=100,
        tooltip="Hands-free: how long a pause ends your turn"),
    live=("vad_silence_ms",),
)  # fmt: skip
INPUT_DEVICE = Setting(
    "input_device", "", _text, Effect.RESTART_AUDIO, "the microphone",
    Row(Page.AUDIO, "Microphone", Widget.DEVICE), audio="input_device",
)  # fmt: skip
OUTPUT_DEVICE = Setting(
    "output_device", "", _text, Effect.RESTART_AUDIO, "the speaker",
    Row(Page.AUDIO, "Speaker", Widget.DEVICE), audio="output_device",
)  # fmt: skip
PLAYOUT_BUFFER_MS = Setting(  # the design's budget: at most 60 ms
    "playout_buffer_ms", 60, WholeNumber(10, 60), Effect.RESTART_AUDIO, "the playout buffer",
    Row(Page.AUDIO, "Playout buffer", Widget.NUMBER, _MS, step=5,
        tooltip="Reply audio buffered before playback, against network jitter"),
    audio="playout_buffer_ms",
)  # fmt: skip
ECHO_MODE = Setting(
    "echo_mode", "half_duplex",
    Choice((("half_duplex", "Mute the microphone while the reply plays"),
            ("full_duplex_aec", "Echo cancellation (talk over the reply)"))),
    Effect.RESTART_AUDIO, "the echo mode",
    Row(Page.AUDIO, "Echo handling", Widget.CHOICE,
        tooltip="Hands-free always cancels the echo, so you can interrupt"),
    audio="echo_mode",
)  # fmt: skip
FRAME_MS = Setting(  # shorter: less latency, more packets
    "frame_ms", 10, Choice(tuple((ms, f"{ms} ms") for ms in (10, 20, 30, 40))),
    Effect.RESTART_AUDIO, "the frame length",
    Row(Page.AUDIO, "Frame length", Widget.CHOICE,
        tooltip="Shorter frames send your voice sooner, in more packets"),
    audio="frame_ms",
)  # fmt: skip
NOISE_GATE = Setting(
    "noise_gate", False, _flag, Effect.RESTART_AUDIO, "the noise gate",
    Row(Page.AUDIO, "Noise gate", Widget.CHECK,
        text="Silence the microphone below a noise floor"),
    audio="noise_gate",
)  # fmt: skip
NORMALIZE = Setting(
    "normalize", False, _flag, Effect.RESTART_AUDIO, "the volume levelling",
    Row(Page.AUDIO, "Volume", Widget.CHECK, text="Even out a quiet or loud microphone"),
    audio="normalize",
)  # fmt: skip
RETENTION_DAYS = Setting(  # 0: keep nothing after the session
    "retention_days", 30, WholeNumber(0, 3650), Effect.RETENTION, "the history kept",
    Row(Page.PRIVACY, "Keep session history for", Widget.NUMBER, " days",
        lowest_text="Only the current session"),
)  # fmt: skip
REDACT_TRANSCRIPTS = Setting(  # read by the history when it stores a transcript line
    "redact_transcripts", True, _flag, Effect.NOTHING, "the transcript redaction",
    Row(Page.PRIVACY, "Transcripts", Widget.CHECK,
        text="Mask personal data before saving (emails, phone numbers, cards, IBANs, "
             "addresses, your names)",
        tooltip="Off keeps transcripts verbatim. The model always hears what you say."),
)  # fmt: skip
REDACT_NAMES = Setting(
    "redact_names", "", _text, Effect.NOTHING, "your names to mask",
    Row(Page.PRIVACY, "Your names to mask", Widget.TEXT,
        tooltip="Comma-separated, e.g. Ada Lovelace, Ada"),
)  # fmt: skip
TOKEN_URL = Setting(  # the command line's --token-url wins over it
    "token_url", "", _token_url, Effect.REBUILD, "the token service",
    Row(Page.API_KEY, "Token service", Widget.TEXT,
        tooltip="Your organisation's token service (https://…/v1/token): each session "
                "gets a short-lived token from it, and no API key is used"),
    live=("token_url",),
)  # fmt: skip
KNOWLEDGE_DIR = Setting(  # the support profile's search_knowledge_base
    "knowledge_dir", "", _folder, Effect.REBUILD, "the knowledge base folder",
    Row(Page.CONVERSATION, "Knowledge base", Widget.FOLDER,
        tooltip="Customer support: a folder of Markdown and text files the assistant "
                "searches and cites (indexed on this computer, not inside the folder)"),
)  # fmt: skip
COURSE_DIR = Setting(  # the tutor's search_course_material and next_topic
    "course_dir", "", _folder, Effect.REBUILD, "the course folder",
    Row(Page.CONVERSATION, "Course", Widget.FOLDER,
        tooltip="Tutor: a folder of Markdown topics, taught in file-name order"),
)  # fmt: skip

# Every setting, in the order of `AppSettings`' fields and of the dialog's rows.
SETTINGS: tuple[Setting[Any], ...] = (
    MODEL, VOICE, LANGUAGE, PROFILE, PUSH_TO_TALK_KEY, HANDS_FREE, VAD_SENSITIVITY,
    VAD_SILENCE_MS, INPUT_DEVICE, OUTPUT_DEVICE, PLAYOUT_BUFFER_MS, ECHO_MODE, FRAME_MS,
    NOISE_GATE, NORMALIZE, RETENTION_DAYS, REDACT_TRANSCRIPTS, REDACT_NAMES, TOKEN_URL,
    KNOWLEDGE_DIR, COURSE_DIR,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AppSettings:
    """The settings' values: one field per declaration in `SETTINGS`, plus consent."""

    model: str = MODEL.default
    voice: str = VOICE.default
    language: str = LANGUAGE.default
    profile: str = PROFILE.default
    push_to_talk_key: str = PUSH_TO_TALK_KEY.default
    hands_free: bool = HANDS_FREE.default
    vad_sensitivity: str = VAD_SENSITIVITY.default
    vad_silence_ms: int = VAD_SILENCE_MS.default
    input_device: str = INPUT_DEVICE.default  # "" = the system default
    output_device: str = OUTPUT_DEVICE.default
    playout_buffer_ms: int = PLAYOUT_BUFFER_MS.default
    echo_mode: str = ECHO_MODE.default
    frame_ms: int = FRAME_MS.default
    noise_gate: bool = NOISE_GATE.default
    normalize: bool = NORMALIZE.default
    retention_days: int = RETENTION_DAYS.default
    redact_transcripts: bool = REDACT_TRANSCRIPTS.default
    redact_names: str = REDACT_NAMES.default
    token_url: str = TOKEN_URL.default
    knowledge_dir: str = KNOWLEDGE_DIR.default  # "" = none
    course_dir: str = COURSE_DIR.default
    consent: ConsentRecord | None = None

    def validated(self) -> AppSettings:
        """A copy with every bad value replaced by its default."""
        return parse_settings(self.to_mapping())[0]

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> AppSettings:
        return parse_settings(values)[0]

    def to_mapping(self) -> dict[str, object]:
        """Flat values for a settings store; `from_mapping` reads them back."""
        flat: dict[str, object] = {s.key: getattr(self, s.key) for s in SETTINGS}
        if self.consent is not None:
            granted, version, utc = CONSENT_KEYS
            flat[granted] = self.consent.granted
            flat[version] = self.consent.version
            flat[utc] = self.consent.utc.isoformat()
        return flat

    @property
    def consent_given(self) -> bool:
        return self.consent is not None and self.consent.is_current

    def with_intents_of(self, running: AppSettings) -> AppSettings:
        """A copy with what the running controller owns taken from `running` (its own
        copy): the settings it takes as intents, and consent. A new stack starts from
        these, not from an older copy of them."""
        owned = {s.key: getattr(running, s.key) for s in SETTINGS if s.effect is Effect.INTENT}
        return dataclasses.replace(self, consent=running.consent, **owned)


# ---------------------------------------------------------------- generated from SETTINGS


def _consent(values: Mapping[str, object]) -> tuple[ConsentRecord | None, bool]:
    """(record, was it readable). A nested "consent" record or the flat keys."""
    nested = values.get("consent")
    if isinstance(nested, ConsentRecord):
        return nested, True
    granted_key, version_key, utc_key = CONSENT_KEYS
    granted = values.get(granted_key)
    if granted is None and nested is None:
        return None, True
    try:
        utc_text = values.get(utc_key)
        version = values.get(version_key)
        flag = _flag(granted)
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
    chosen: dict[str, object] = {}
    rejected: list[str] = []
    for setting in SETTINGS:
        if setting.key not in values:
            continue
        value = setting.parse(values[setting.key])
        if value is None:
            rejected.append(setting.key)
        else:
            chosen[setting.key] = value
    consent, readable = _consent(values)
    if not readable:
        rejected.append("consent")
    elif consent is not None:
        chosen["consent"] = consent
    return dataclasses.replace(defaults, **chosen), tuple(rejected)  # type: ignore[arg-type]


def audio_engine_values(settings: AppSettings) -> dict[str, Any]:
    """The audio engine's settings (`AudioSettings` fields) that come from the app's,
    by each declaration's `audio`. A device "" (the system default) is None there."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.audio:
            value = getattr(settings, setting.key)
            values[setting.audio] = None if value == "" else value
    return values


@dataclass(frozen=True, slots=True)
class Changes:
    """The settings that differ between two sets of settings, by what they need."""

    changed: tuple[Setting[Any], ...]

    def needing(self, *effects: Effect) -> tuple[Setting[Any], ...]:
        return tuple(s for s in self.changed if s.effect in effects)

    @property
    def new_stack(self) -> tuple[Setting[Any], ...]:
        """Fixed when the audio engine or the controller is made. The controller holds
        its audio port for life, so either means a new stack."""
        return self.needing(Effect.REBUILD, Effect.RESTART_AUDIO)

    @property
    def intents(self) -> tuple[Setting[Any], ...]:
        return self.needing(Effect.INTENT)

    @property
    def retention(self) -> bool:
        return bool(self.needing(Effect.RETENTION))


def changes_needed(in_effect: AppSettings, wanted: AppSettings) -> Changes:
    """What it takes to go from the settings `in_effect` to the `wanted` ones."""
    return Changes(
        tuple(s for s in SETTINGS if getattr(in_effect, s.key) != getattr(wanted, s.key))
    )


def names_of(settings: tuple[Setting[Any], ...]) -> str:
    """The settings as a sentence names them: "the model, the microphone"."""
    return ", ".join(s.name for s in settings)
