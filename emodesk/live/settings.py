"""What a Live connection is made from. Plain data; `config.py` turns it into the SDK's config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_MODEL = "gemini-3.1-flash-live-preview"
DEFAULT_VOICE = "Puck"


@dataclass(frozen=True, slots=True)
class LiveSettings:
    model: str = DEFAULT_MODEL
    voice: str = DEFAULT_VOICE
    # Full system instruction: profile + language line + (only with consent) emotion rules.
    system_instruction: str = ""
    # The functions the model may call, as declarations (`emodesk.core.tools`); the
    # emotion report is among them only with the user's consent.
    tools: tuple[Mapping[str, object], ...] = ()
    # Push-to-talk: automatic activity detection off, explicit activity start/end.
    push_to_talk: bool = True
    # Hands-free voice activity detection tuning (used when push_to_talk is False).
    vad_start_sensitivity: str = "high"  # "high" | "low"
    vad_end_sensitivity: str = "high"
    vad_silence_ms: int = 500
    language_code: str | None = None
    api_version: str | None = None  # None: the SDK's default (v1)
    endpoint: str | None = None  # None: Google's endpoint
    ca_file: str | None = None
    api_key: str = field(default="", repr=False)  # never in a repr, a log or a file
    # An organisation's token service: each connection gets an ephemeral token from it
    # (emodesk.live.tokens) instead of using `api_key`.
    token_url: str | None = None


def declares(settings: LiveSettings, name: str) -> bool:
    """Whether `settings` lets the model call function `name`."""
    return any(tool.get("name") == name for tool in settings.tools)
