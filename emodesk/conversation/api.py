"""What the controller shows the outside (the GUI, `emodesk converse`): its states and
the events it emits. The UI depends on this module, never on `live` or `audio`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class ConversationState(StrEnum):
    OFFLINE = "offline"
    CONNECTING = "connecting"
    READY = "ready"
    LISTENING = "listening"  # push-to-talk held (or speech detected hands-free)
    WAITING = "waiting"  # turn sent, no reply audio yet
    REPLYING = "replying"
    RECONNECTING = "reconnecting"
    ERROR = "error"


# The states with a live session: a turn can start, a text can be sent.
CONNECTED_STATES: frozenset[ConversationState] = frozenset(
    {
        ConversationState.READY,
        ConversationState.LISTENING,
        ConversationState.WAITING,
        ConversationState.REPLYING,
    }
)


class Role(StrEnum):
    """Who said a transcript line."""

    USER = "user"
    MODEL = "model"


class TurnOutcome(StrEnum):
    """How a turn closed (`emodesk.conversation.turn` decides)."""

    COMPLETED = "completed"  # the server finished its reply (turnComplete)
    INTERRUPTED = "interrupted"  # the user spoke or pressed over the reply
    FAILED = "failed"  # not answered: `TurnClosed.reason` says why


class Intent(StrEnum):
    """What the UI asked for, as `IntentRefused` names it: one per intent method of
    `ControllerProtocol`, named after it."""

    CONNECT = "connect"
    DISCONNECT = "disconnect"
    END_SESSION = "end_session"
    PUSH_TO_TALK_DOWN = "push_to_talk_down"
    PUSH_TO_TALK_UP = "push_to_talk_up"
    SET_HANDS_FREE = "set_hands_free"
    SEND_TEXT = "send_text"
    CHANGE_VOICE = "change_voice"
    CHANGE_PROFILE = "change_profile"
    TUNE_HANDS_FREE = "tune_hands_free"
    SET_CONSENT = "set_consent"
    EXPORT = "export"


class NoticeKind(StrEnum):
    RECONNECTING = "reconnecting"
    RECONNECTED = "reconnected"
    INVALID_KEY = "invalid_key"
    MIC_LOST = "mic_lost"
    SPEAKER_LOST = "speaker_lost"  # the output device failed; the turn goes on
    AUDIO_DEVICE = "audio_device"  # a device substituted or back after a failure; all works
    AUDIO_DROPPED = "audio_dropped"
    ESCALATION = "escalation"
    CONNECTION_FAILED = "connection_failed"
    STORAGE = "storage"  # the history could not be written (disk full, damaged file)
    ESTIMATION = "estimation"  # a turn's acoustic estimate failed; the session goes on
    TURN_FAILED = "turn_failed"  # a turn could not be answered; the reason says why
    SERVER_DATA = "server_data"  # the server sent something unusable; it was skipped


@dataclass(frozen=True, slots=True)
class StateChanged:
    """`detail` is for people; `retry_in_s` is set while RECONNECTING: the wait before
    the next try, in seconds."""

    state: ConversationState
    previous: ConversationState
    detail: str = ""
    retry_in_s: float | None = None


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session_id: str
    voice: str
    model: str
    profile: str
    synthetic: bool  # on the local emulator: replies are synthetic


@dataclass(frozen=True, slots=True)
class SessionEnded:
    session_id: str


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """A piece of one side of a turn, streamed as it arrives: appended to that side's
    text. The settled text of both sides comes with `TurnClosed`."""

    role: Role
    text: str
    turn: int


@dataclass(frozen=True, slots=True)
class ReplyRestarted:
    """The reply to `turn` was cut by a lost connection and the turn was sent again:
    the model's text so far is void, a whole new reply follows."""

    turn: int


@dataclass(frozen=True, slots=True)
class TurnClosed:
    """A turn ended. `user_text` and `model_text` are the settled texts, exactly as
    stored: an interrupted reply keeps only what was played. `reason` says why a
    failed turn failed (empty otherwise)."""

    turn: int
    outcome: TurnOutcome
    reason: str
    user_text: str
    model_text: str


@dataclass(frozen=True, slots=True)
class ReadingAdded:
    """A reading placed on the timeline with the tracker's verdict after it."""

    turn: int
    source: str
    emotion: str
    confidence: float
    energy_level: str
    t_start_s: float
    t_end_s: float
    arousal: float | None
    valence: float | None
    trend: str
    escalate: bool


@dataclass(frozen=True, slots=True)
class TrendChanged:
    trend: str
    escalate: bool
    advice: str  # the profile's meaning of the trend, e.g. "Offer a human agent"


@dataclass(frozen=True, slots=True)
class TurnLatency:
    turn: int
    to_first_audio_s: float | None  # push-to-talk released -> first reply audio received
    to_first_played_s: float | None  # ... -> first reply audio at the device


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should see, with the action that fixes it, if any."""

    kind: NoticeKind
    message: str
    action: str = ""


@dataclass(frozen=True, slots=True)
class IntentRefused:
    intent: Intent
    reason: str


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    voice: str
    profile: str
    consent: bool
    hands_free: bool


@dataclass(frozen=True, slots=True)
class TopicChanged:
    """The lesson moved on to a topic of the course (the tutor's `next_topic`)."""

    title: str
    file: str


ControllerEvent = (
    StateChanged
    | SessionStarted
    | SessionEnded
    | TranscriptLine
    | ReplyRestarted
    | TurnClosed
    | ReadingAdded
    | TrendChanged
    | TurnLatency
    | Notice
    | IntentRefused
    | SettingsChanged
    | TopicChanged
)


class ControllerProtocol(Protocol):
    """The controller as the UI sees it. Intents that do not fit the current state are
    refused: the method returns False and an `IntentRefused` event says why."""

    @property
    def state(self) -> ConversationState: ...

    @property
    def session_id(self) -> str | None: ...

    def subscribe(self, on_event: Callable[[ControllerEvent], None]) -> Callable[[], None]:
        """Events are delivered on the loop's thread; the returned callable unsubscribes."""

    async def connect(self) -> bool: ...

    async def disconnect(self) -> bool: ...

    def push_to_talk_down(self) -> bool: ...

    def push_to_talk_up(self) -> bool: ...

    def set_hands_free(self, enabled: bool) -> bool: ...

    async def send_text(self, text: str) -> bool: ...

    async def change_voice(self, voice: str) -> bool: ...

    async def change_profile(self, profile: str) -> bool: ...

    async def tune_hands_free(self, sensitivity: str, silence_ms: int) -> bool: ...

    async def set_consent(self, granted: bool) -> bool: ...

    async def export(self, path: str, fmt: str = "csv", session_id: str | None = None) -> bool:
        """Write the timeline of this (or a past) session as "csv" or "json"; or, as
        "handoff", this session for a human agent (`emodesk.core.handoff`)."""

    async def end_session(self) -> bool: ...

    def session_report(self) -> str | None:
        """A plain-text summary of this (or the last) session's timeline; None before
        any session."""
