"""The consent the user gives (or not) to emotion estimation, and the text they read.

Changing `CONSENT_TEXT` in meaning means a new `CONSENT_VERSION`, so the app can ask
again: a record only counts for the version it was given for (`is_current`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

CONSENT_VERSION = "2026-11-2"

CONSENT_TITLE = "Let EmoDesk estimate how you sound?"

CONSENT_TEXT = """\
EmoDesk can estimate the emotional expression in your voice for every turn you speak \
and show it on a timeline. This is optional: without it, EmoDesk works as a normal \
voice assistant.

What is estimated: one of happy, sad, angry, anxious or neutral, with a confidence \
and an energy level, for each of your turns.

From what: the pitch, loudness and pace of your voice, measured on this computer, and \
the judgment of the AI model that hears your speech.

Where it goes: the model provider (Google) receives your speech in any case; with your \
consent it is also asked to report its estimate. The estimates and the session history \
are kept on this computer only, for as long as your retention setting says, and you can \
delete them at any time.

Raw audio is never stored.

This is an estimate of how you sound, not a diagnosis of how you feel, and it can be \
wrong.

You can withdraw consent at any time with the Emotion button on the toolbar. It takes \
effect from your next turn: no further estimates are made, sent or stored."""


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """The user's answer to one version of the consent text, and when it was given."""

    granted: bool
    version: str
    utc: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.granted, bool):
            raise ValueError(f"granted must be a bool, got {type(self.granted).__name__}")
        if not isinstance(self.version, str) or not self.version.strip():
            raise ValueError("version must be non-empty text")
        if not isinstance(self.utc, datetime) or self.utc.tzinfo is None:
            raise ValueError("utc must be a timezone-aware datetime")
        object.__setattr__(self, "utc", self.utc.astimezone(UTC))

    @property
    def is_current(self) -> bool:
        """Granted, and for the consent text the app shows today."""
        return self.granted and self.version == CONSENT_VERSION

    @classmethod
    def grant(cls, utc: datetime | None = None) -> ConsentRecord:
        return cls(True, CONSENT_VERSION, utc or datetime.now(UTC))

    @classmethod
    def decline(cls, utc: datetime | None = None) -> ConsentRecord:
        return cls(False, CONSENT_VERSION, utc or datetime.now(UTC))


def consent_given(record: ConsentRecord | None) -> bool:
    """Whether emotion estimation may run: a current, granted record."""
    return record is not None and record.is_current
