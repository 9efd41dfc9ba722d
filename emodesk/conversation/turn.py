"""One turn's whole life, from the key press (or the typed text, or the speech the server
heard hands-free) to its close. This is where a turn's phases and the ways it can end
are decided; the controller carries out what the transitions say (it sends, plays,
stores and shows), and every close goes through `Turn.close`.

Phases and the transitions between them (each a method; one that does not fit the
phase returns False and changes nothing):

    CAPTURING --released--> SENT --reply_content--> ANSWERING --+
        |                    ^                          |       |
        |                    +-------reply_lost---------+       |
        +--------------------------- close(outcome, reason) ----+--> CLOSED

- CAPTURING: the user is speaking (push-to-talk held, or hands-free speech the server
  has not yet ended).
- SENT: the user side is complete; the server has not answered anything yet.
- ANSWERING: reply content arrived (a tool call, reply audio or reply text).
- CLOSED: `outcome` is COMPLETED (the server's turnComplete), INTERRUPTED (the user
  spoke or pressed over it) or FAILED (`reason` says why: undeliverable, stalled, the
  connection gave up, a limit).

A reply cut by a lost connection is void (`reply_lost`): the turn is sent again and a
whole new reply follows, so the turn goes back to SENT and its reply text is dropped.
An interrupted reply keeps only the text that was played (`played_s`).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from enum import StrEnum
from typing import Any, Protocol

from emodesk.conversation.api import Role, TurnOutcome
from emodesk.core.pcm import MIC_BYTES_PER_SECOND, MIC_RATE, pcm_seconds

# The newest audio of a turn kept for the acoustic estimator. A hands-free turn can run
# from the end of one reply to the start of the next, silence included, so without a cap
# it grows without limit; half a minute is more than any utterance the estimator judges.
ESTIMATOR_WINDOW_S = 30.0
_ESTIMATOR_WINDOW_BYTES = int(ESTIMATOR_WINDOW_S * MIC_BYTES_PER_SECOND)


class Phase(StrEnum):
    CAPTURING = "capturing"
    SENT = "sent"
    ANSWERING = "answering"
    CLOSED = "closed"


class TurnKind(StrEnum):
    PUSH_TO_TALK = "push-to-talk"
    TEXT = "text"
    HANDS_FREE = "hands-free"


class SpeechTrack(Protocol):
    """A voice detector following a live microphone stream (emodesk.dsp.vad.LiveSpeech);
    its calls are made on the controller's worker thread, in order."""

    def feed(self, pcm16: bytes) -> None: ...

    def take(self) -> Any | None:
        """The speech fed since the last take (int16 samples), or None without any."""
        ...


class EstimatorAudio:
    """The newest `ESTIMATOR_WINDOW_S` of a turn's microphone audio, for its estimate.
    Hands-free, `speech` is the voice detector that the same frames are fed to (the
    controller's `SpeechTrack`), so the estimate is made from the speech alone."""

    __slots__ = ("_bytes", "_frames", "speech", "trimmed")

    def __init__(self) -> None:
        self._frames: deque[bytes] = deque()
        self._bytes = 0
        self.trimmed = False  # older audio was dropped to stay within the window
        self.speech: SpeechTrack | None = None

    @property
    def seconds(self) -> float:
        return pcm_seconds(self._bytes, MIC_RATE)

    def __bool__(self) -> bool:
        return self._bytes > 0

    def keep(self, pcm: bytes) -> None:
        self._frames.append(pcm)
        self._bytes += len(pcm)
        while self._bytes > _ESTIMATOR_WINDOW_BYTES and len(self._frames) > 1:
            self._bytes -= len(self._frames.popleft())
            self.trimmed = True

    def take(self) -> tuple[bytes, bool]:
        """The kept audio and whether older audio was dropped; the window is emptied."""
        pcm, trimmed = b"".join(self._frames), self.trimmed
        self.clear()
        return pcm, trimmed

    def clear(self) -> None:
        self._frames.clear()
        self._bytes = 0
        self.trimmed = False
        self.speech = None


@dataclasses.dataclass(slots=True)
class _ReplyPiece:
    text: str
    at_audio_s: float  # seconds of reply audio received when this text arrived


@dataclasses.dataclass(slots=True, eq=False)
class Turn:
    """A user turn and the reply to it. Times are the controller's clock (monotonic)."""

    number: int
    kind: TurnKind
    started: float
    consent: bool  # emotion analysis was allowed when the turn began
    phase: Phase = Phase.CAPTURING
    outcome: TurnOutcome | None = None
    reason: str = ""  # why a FAILED turn failed
    released: float | None = None  # the user side ended (key up, text sent, server heard)
    first_audio: float | None = None  # first reply audio received
    first_played: float | None = None  # ... and at the device
    latency_sent: bool = False
    last_progress: float = 0.0  # the newest sign of life for this turn (for the stall check)
    user_parts: list[str] = dataclasses.field(default_factory=list)
    reply: list[_ReplyPiece] = dataclasses.field(default_factory=list)
    reply_audio_s: float = 0.0  # reply audio received so far
    played_s: float | None = None  # set on interruption: the reply audio that was heard
    audio: EstimatorAudio = dataclasses.field(default_factory=lambda: EstimatorAudio())

    def __post_init__(self) -> None:
        self.last_progress = self.started
        if self.kind is TurnKind.TEXT:
            self.phase = Phase.SENT
            self.released = self.started

    # -- what the turn is now ----------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    @property
    def open(self) -> bool:
        return self.phase is not Phase.CLOSED

    @property
    def awaiting_reply(self) -> bool:
        """Sent or being answered: the server owes this turn something."""
        return self.phase in (Phase.SENT, Phase.ANSWERING)

    @property
    def user_text(self) -> str:
        return "".join(self.user_parts).strip()

    @property
    def model_text(self) -> str:
        """The reply's text; after an interruption only what was played."""
        if self.played_s is None:
            return "".join(p.text for p in self.reply).strip()
        return "".join(p.text for p in self.reply if p.at_audio_s <= self.played_s).strip()

    # -- transitions -------------------------------------------------------------------

    def released_at(self, now: float) -> bool:
        """The user side is complete (key up; hands-free: the server heard its end)."""
        if self.phase is not Phase.CAPTURING:
            return False
        self.phase = Phase.SENT
        self.released = now
        self.last_progress = now
        return True

    def reply_content(self, now: float) -> bool:
        """A tool call answered, reply audio or reply text arrived for this turn."""
        self.last_progress = now
        if self.phase is Phase.CAPTURING:
            # Hands-free: the server replies once it has heard the end of the speech.
            self.released_at(now)
        if self.phase is not Phase.SENT:
            return False
        self.phase = Phase.ANSWERING
        return True

    def audio_received(self, seconds: float, now: float) -> bool:
        """Reply audio arrived; True for the first of this reply."""
        self.reply_content(now)
        self.reply_audio_s += seconds
        if self.first_audio is None:
            self.first_audio = now
            return True
        return False

    def add_reply_text(self, text: str, now: float) -> None:
        self.reply_content(now)
        self.reply.append(_ReplyPiece(text, self.reply_audio_s))

    def add_user_text(self, text: str, now: float) -> None:
        self.last_progress = now
        self.user_parts.append(text)

    def reply_lost(self, now: float) -> bool:
        """The link dropped before the reply completed: the turn is sent again and a new
        reply will come, so what arrived of this one is void."""
        if self.phase is not Phase.ANSWERING:
            if self.phase is Phase.SENT:
                self.last_progress = now
            return False
        self.phase = Phase.SENT
        self.reply.clear()
        self.reply_audio_s = 0.0
        self.first_audio = None
        self.first_played = None
        self.last_progress = now
        return True

    def interrupted(self, unplayed_s: float) -> None:
        """The user spoke or pressed over the reply: keep the text of what was heard."""
        self.played_s = max(0.0, self.reply_audio_s - unplayed_s)

    def close(self, outcome: TurnOutcome, reason: str = "") -> bool:
        """The only way a turn ends. False if it had ended already."""
        if self.phase is Phase.CLOSED:
            return False
        self.phase = Phase.CLOSED
        self.outcome = outcome
        self.reason = reason if outcome is TurnOutcome.FAILED else ""
        self.audio.clear()
        return True

    def stalled(self, now: float, limit_s: float) -> bool:
        """Owed a reply and no sign of it for `limit_s`."""
        return self.awaiting_reply and now - self.last_progress > limit_s

    def text_of(self, role: Role) -> str:
        return self.user_text if role is Role.USER else self.model_text
