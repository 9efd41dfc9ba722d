"""Typed events that the Live session emits, one per fact the server (or the link) tells us.

The conversation controller consumes these; nothing outside `emodesk.live` sees
google-genai's own message types.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from emodesk.core.parsing import ParsedEmotion


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Reply audio: 16-bit little-endian mono PCM at `rate` Hz (24000 from Gemini).
    `played`: already handed to the speaker on the session's thread as it arrived
    (`emodesk.live.threaded`), so the listener only keeps account of it."""

    data: bytes
    rate: int
    played: bool = False


@dataclass(frozen=True, slots=True)
class InputTranscript:
    """A piece of the transcription of the user's speech."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class OutputTranscript:
    """A piece of the transcription of the model's spoken reply."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class TextReply:
    """Text from the model (text-output models); emotion JSON already split off."""

    text: str


@dataclass(frozen=True, slots=True)
class EmotionReported:
    """The model's `report_user_emotion` call (answered already), or an emotion header
    of a text reply (`call_id` empty). Which turn and when: the controller's turn says."""

    report: ParsedEmotion
    call_id: str


@dataclass(frozen=True, slots=True)
class ToolCallCancelled:
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The server stopped its reply (barge-in): drop queued reply audio. `unheard_s`:
    set when the reply was already silenced on the session's own thread as this arrived
    (`LiveOnThread.set_early_silence`), the seconds that dropped unheard."""

    unheard_s: float | None = None


@dataclass(frozen=True, slots=True)
class GenerationComplete:
    pass


@dataclass(frozen=True, slots=True)
class TurnComplete:
    pass


@dataclass(frozen=True, slots=True)
class GoAway:
    """The server will close this connection soon; `time_left_s` may be None."""

    time_left_s: float | None


@dataclass(frozen=True, slots=True)
class ResumptionHandle:
    handle: str
    resumable: bool


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None
    response_tokens: int | None
    total_tokens: int | None


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"  # closed on purpose by us
    FAILED = "failed"  # gave up: bad key, too many tries, protocol error


@dataclass(frozen=True, slots=True)
class LinkStateChanged:
    """Connection state. While RECONNECTING, `attempt` counts tries and `delay_s`
    is the wait before the next one; `resumed` says a resumption handle was used."""

    state: LinkState
    attempt: int = 0
    delay_s: float = 0.0
    reason: str = ""
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class SessionError:
    """An error the user should see. `code` is the WebSocket close code or HTTP status
    when there is one; `auth` marks a rejected key (never retried)."""

    message: str
    code: int | None = None
    retryable: bool = False
    auth: bool = False


@dataclass(frozen=True, slots=True)
class TurnResent:
    """The user turn the lost link had not completed was sent again on the new one."""


@dataclass(frozen=True, slots=True)
class TurnUndelivered:
    """The user turn could not be delivered and will not be sent again."""

    reason: str


@dataclass(frozen=True, slots=True)
class TurnLimitExceeded:
    """The reply went past a per-turn limit (`emodesk.live.limits`); the rest of it is
    dropped. `reason` names the limit."""

    reason: str


@dataclass(frozen=True, slots=True)
class AudioDropped:
    """User audio that could not be sent (link down past the buffer) — reported, not hidden."""

    seconds: float
    reason: str


LiveEvent = (
    AudioChunk
    | InputTranscript
    | OutputTranscript
    | TextReply
    | EmotionReported
    | ToolCallCancelled
    | Interrupted
    | GenerationComplete
    | TurnComplete
    | GoAway
    | ResumptionHandle
    | Usage
    | LinkStateChanged
    | SessionError
    | TurnResent
    | TurnUndelivered
    | TurnLimitExceeded
    | AudioDropped
)
