"""`LiveSession`: one Gemini Live conversation over google-genai, kept alive across
connections.

- Outgoing audio, activity signals and text go into an outbox that a sender task
  drains; `send_audio` never blocks.
- A receive loop runs across turns and turns every server message into the typed
  events of `emodesk.live.events`.
- `report_user_emotion` calls are answered at once (on 3.1 Flash Live the call blocks
  the reply until answered) and emitted as a parsed reading.
- The newest resumption handle is kept, also across `close()`/`start()` to the same
  endpoint (`forget()` drops it for a new conversation). On a dropped connection or a
  1011 close the session reconnects with it (exponential backoff with jitter, bounded
  tries, every state an event).
- Delivery: the user turn (push-to-talk audio between its activity signals, or a typed
  text) is kept as sent until the server completes it (`turnComplete`), not merely
  until the reply starts: a link lost after the tool call and before the audio still
  owes the turn. On the next link it is sent again, once (`TurnResent`); lost again
  unanswered, it is given up (`TurnUndelivered`). Audio that cannot be kept is
  reported as `AudioDropped`.
- The session neither numbers turns nor keeps a transcript: the controller's turns own
  both, and `set_history` tells the session where to read the conversation so far
  when it must seed a fresh server session.
- On go-away the reply in progress is let finish: the session reconnects when the turn
  completes or `GO_AWAY_MARGIN_S` before the server's `time_left` runs out.
- A rejected key (close 1007/1008 naming the key, HTTP 401/403) fails at once, and so
  does a setup the server rejects (1007) unless it was a resumption: a refused resume
  starts fresh, seeded with the conversation so far (`history_config` +
  `send_client_content(turn_complete=True)`, the SDK's way to prefill history; on 3.1
  this is the only time `client_content` may be sent).
- Failure reasons and log lines never carry the API key (`credentials.redact`).
- With `settings.token_url` every connection uses an ephemeral token from the
  organisation's token service instead of a key (`tokens.TokenKeeper` says when a new
  one is fetched). A token the service cannot give, or the Live service refuses twice
  in a row, fails the session with its own message, never as a rejected key.

google-genai is imported lazily (it costs about half a second at start-up), off the
event loop: `preload_sdk()` in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import ssl
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from functools import partial
from typing import Any

from emodesk.core.pcm import MIC_BYTES_PER_SECOND, MIC_MIME
from emodesk.live.credentials import redact
from emodesk.live.events import (
    AudioChunk,
    AudioDropped,
    EmotionReported,
    GenerationComplete,
    GoAway,
    InputTranscript,
    Interrupted,
    LinkState,
    LinkStateChanged,
    LiveEvent,
    OutputTranscript,
    ResumptionHandle,
    SessionError,
    TextReply,
    ToolCallCancelled,
    TurnComplete,
    TurnLimitExceeded,
    TurnResent,
    TurnUndelivered,
    Usage,
)
from emodesk.live.limits import (
    DEFAULT_REPLY_RATE,
    MAX_REPLY_RATE,
    MIN_REPLY_RATE,
    ReplyBudget,
)
from emodesk.live.settings import LiveSettings, declares
from emodesk.live.tokens import HttpTokenSource, TokenError, TokenKeeper, TokenSource

log = logging.getLogger(__name__)

_AUTH_WORDS = re.compile(r"api key|api_key|permission|unauthenticated|credential", re.I)
_TOKEN_WORDS = re.compile(r"ephemeral token|auth_tokens|access token", re.I)
_RATE_IN_MIME = re.compile(r"rate=(\d+)")
_AUTH_HEADER = re.compile(r"x-goog-api-key|authorization", re.I)
# Reconnect this long before a go-away's time_left ends, if the turn is still going.
GO_AWAY_MARGIN_S = 2.0
# After the turn completes, wait at most this long for the handle that includes it.
GO_AWAY_HANDLE_WAIT_S = 1.0
# Hands-free: when the server says its reply was interrupted, the user's new speech began
# about this long before; that much of the audio sent is kept for a re-send.
INTERRUPTING_SPEECH_S = 1.0
# A reason shown to the user or logged is cut to this: library errors can quote a whole
# frame (megabytes of transcript) or what was sent.
_REASON_CHARS = 200
# Waiting for a clean close (1000) of the link on the way out.
_CLOSE_TIMEOUT_S = 1.0

ClientFactory = Callable[[LiveSettings], Any]
# Where the session gets ephemeral tokens for `settings.token_url`.
TokenSourceFactory = Callable[[LiveSettings], TokenSource]
# The conversation so far as (role, text) pairs, role "user" or "model".
HistorySource = Callable[[], Sequence[tuple[str, str]]]
# A function call's handler: (name, args) -> the response the model gets.
ToolDispatcher = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
# A dispatcher that has not answered by then is answered with an error: the model's
# reply waits for the answer (calls block on 3.1). The handlers' own limits are shorter.
TOOL_CALL_LIMIT_S = 10.0


async def _no_functions(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"error": f"unknown function {name}: this client declared none"}


def preload_sdk() -> None:
    """Imports google-genai and what the session uses from it (about half a second).

    Safe from a worker thread and idempotent; the app calls it in an executor at start
    so the first connect does not stall the event loop.
    """
    import google.genai
    import google.genai.errors
    import google.genai.live
    import google.genai.types
    import websockets.exceptions

    import emodesk.core.emotion_tool
    import emodesk.core.parsing
    import emodesk.live.config
    import emodesk.live.endpoint

    del google, websockets, emodesk  # imported for their side effect only


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """One policy for every way a link is lost (a drop, a 1011 close, goAway, a setup
    that never completes): exponential backoff with jitter in [delay/2, delay], at most
    `max_attempts` tries in a row. A goAway is honoured at once the first time; a link
    that goes away again backs off like any other loss."""

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0
    # A link that stayed up this long worked: its loss starts a fresh count of tries, so
    # drops hours apart never add up to "gave up" (links that die at once still do).
    stable_after_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, attempt - 1))
        return float(ceiling * rng.uniform(0.5, 1.0))


class _Op(Enum):
    AUDIO = auto()
    START = auto()
    END = auto()
    TEXT = auto()


@dataclass(slots=True)
class _Outgoing:
    op: _Op
    payload: Any = None
    queued_at: float = 0.0


class _Failure(Exception):
    """Why a connection ended, sorted into what the supervisor should do."""

    def __init__(
        self,
        reason: str,
        *,
        code: int | None = None,
        retryable: bool = True,
        auth: bool = False,
        refused_resume: bool = False,
        go_away: bool = False,
        reconfigure: bool = False,
        token: bool = False,
        token_refused: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retryable = retryable
        self.auth = auth
        self.refused_resume = refused_resume
        self.go_away = go_away
        self.reconfigure = reconfigure
        self.token = token  # no token could be had from the token service
        self.token_refused = token_refused  # the Live service refused the token


def _time_left(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value.rstrip("s"))
    except ValueError:
        return None


def _short(text: str) -> str:
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def classify(exc: BaseException, *, during_setup: bool, resuming: bool) -> _Failure:
    """Sorts a connection error: auth (never retried), refused resumption, retryable..."""
    from google.genai import errors
    from websockets.exceptions import (
        ConnectionClosed,
        InvalidHeaderValue,
        InvalidStatus,
        InvalidURI,
    )

    from emodesk.live.config import InvalidLiveSettings
    from emodesk.live.endpoint import EndpointError

    if isinstance(exc, InvalidLiveSettings | EndpointError):
        return _Failure(f"cannot connect with these settings: {exc}", retryable=False)
    if isinstance(exc, errors.APIError):
        code = int(exc.code) if exc.code is not None else None
        detail = exc.details if isinstance(exc.details, str) else str(exc.message or exc.details)
        detail = _short(detail)
        reason = f"closed with {code}: {detail}" if detail else f"closed with {code}"
        if code in (1007, 1008) and _AUTH_WORDS.search(detail or ""):
            return _Failure(reason, code=code, retryable=False, auth=True)
        if code == 1008 and _TOKEN_WORDS.search(detail or ""):
            return _Failure(reason, code=code, retryable=False, token_refused=True)
        if code in (401, 403):
            return _Failure(reason, code=code, retryable=False, auth=True)
        if code in (1007, 1008) and during_setup and resuming:
            return _Failure(reason, code=code, refused_resume=True)
        if code == 1007 and during_setup:
            # Invalid argument in a fresh setup: the same setup fails the same way again.
            return _Failure(reason, code=code, retryable=False)
        if code == 1008 or (code is not None and 400 <= code < 500 and code != 429):
            return _Failure(reason, code=code, retryable=False)
        return _Failure(reason, code=code)
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        auth = status in (401, 403)
        retryable = status >= 500 or status == 429
        return _Failure(
            f"the server refused the connection (HTTP {status})",
            code=status,
            retryable=retryable,
            auth=auth,
        )
    if isinstance(exc, InvalidHeaderValue) and _AUTH_HEADER.search(str(exc)):
        # Raised before anything is sent: the key cannot go into a header at all.
        return _Failure(
            "the API key contains characters that cannot be sent (spaces or control)",
            retryable=False,
            auth=True,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _Failure(
            f"the server's certificate is not trusted ({exc.verify_message}); "
            "check --ca-file / EMODESK_CA_FILE",
            retryable=False,
        )
    if isinstance(exc, InvalidURI):
        return _Failure(f"bad endpoint: {exc}", retryable=False)
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd else 1006
        return _Failure(f"connection closed ({code})", code=code)
    if isinstance(exc, TimeoutError):
        return _Failure("the server did not answer in time")
    if isinstance(exc, OSError):
        return _Failure(f"cannot reach the server: {exc.strerror or exc}")
    if during_setup and isinstance(exc, ValueError | TypeError | AttributeError | KeyError):
        # The SDK could not read the server's answer to the setup.
        return _Failure(
            f"the server's answer to the setup could not be read ({type(exc).__name__})"
        )
    return _Failure(_short(f"{type(exc).__name__}: {exc}"))


def _is_close(exc: BaseException) -> bool:
    """The link closed (the SDK's APIError with a WebSocket close code), as opposed to a
    frame it could not read."""
    from google.genai import errors

    code = exc.code if isinstance(exc, errors.APIError) else None
    return isinstance(code, int) and 1000 <= code <= 4999


def _server_of(settings: LiveSettings) -> tuple[str | None, str, str | None]:
    return settings.endpoint, settings.api_key, settings.token_url


def _quiet_token_warning() -> None:
    """The SDK warns at every token connect that its token support is experimental: the
    user can do nothing about it, and converse would print it each time."""
    from google.genai import errors

    warnings.filterwarnings(
        "ignore",
        message="The SDK's ephemeral token support is experimental",
        category=errors.ExperimentalWarning,
        append=True,
    )


def _http_token_source(settings: LiveSettings) -> TokenSource:
    assert settings.token_url is not None
    return HttpTokenSource(settings.token_url, ca_file=settings.ca_file)


class LiveSession:
    """Implements `emodesk.conversation.ports.LivePort` over `client.aio.live.connect`.

    `client_factory(settings)` makes the genai client (default: `endpoint.make_client`);
    `token_source(settings)` gives the token service for `settings.token_url` (default:
    `tokens.HttpTokenSource` over HTTPS);
    `rng` makes the backoff jitter reproducible; `buffer_limit_s` bounds the user audio
    kept while the link is down.
    """

    def __init__(
        self,
        client_factory: ClientFactory | None = None,
        *,
        retry: RetryPolicy | None = None,
        buffer_limit_s: float = 30.0,
        connect_timeout_s: float = 15.0,
        rng: random.Random | None = None,
        token_source: TokenSourceFactory | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._token_source = token_source or _http_token_source
        self._keeper: TokenKeeper | None = None
        self._keeper_url: str | None = None
        self._token_retried = False  # a refused token was replaced; refused again: fail
        self._retry = retry or RetryPolicy()
        self._buffer_limit_bytes = int(buffer_limit_s * MIC_BYTES_PER_SECOND)
        self._connect_timeout_s = connect_timeout_s
        self._rng = rng or random.Random()
        self._listener: Callable[[LiveEvent], None] | None = None
        self._settings: LiveSettings | None = None
        self._client: Any = None
        self._client_key: tuple[Any, ...] | None = None
        self._state = LinkState.CLOSED
        self._handle: str | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._link: Any = None  # the SDK's AsyncSession while connected
        self._link_ready = asyncio.Event()
        self._settled = asyncio.Event()  # connected or failed, after start/reconfigure
        self._restart: _Failure | None = None
        self._kick = asyncio.Event()  # wakes the connection runner for a reconfigure
        # Outgoing.
        self._outbox: deque[_Outgoing] = deque()
        self._outbox_bytes = 0
        self._wake = asyncio.Event()
        # The user turn the server has not completed, as sent so far (for a re-send).
        self._pending_started = False  # its activity_start went out (push-to-talk)
        self._pending_ended = False  # its activity_end (or its text) went out
        self._pending_text: str | None = None  # a typed turn
        self._pending_audio: deque[bytes] = deque()
        self._pending_bytes = 0
        self._pending_resent = False  # already sent again once, on a later link
        self._dropped_s = 0.0
        # What the reply in progress has used of the per-turn limits, and its parsing.
        self._budget = ReplyBudget()
        self._carry = b""  # an odd byte of reply audio, completed by the next chunk
        self._carry_rate = 0
        self._skipped: set[str] = set()  # kinds of reply data refused (said once a reply)
        self._history: HistorySource = tuple
        self._completed_turns = 0  # of this conversation (since start or forget)
        self._dispatch: ToolDispatcher = _no_functions
        self._calls: dict[str, asyncio.Task[None]] = {}  # function calls being answered
        self._call_failure: BaseException | None = None
        self._call_failed = asyncio.Event()
        self._seed_next: tuple[tuple[str, str], ...] = ()
        self._failed_attempts = 0
        self._link_up_at: float | None = None  # when the current link was set up
        # Go-away: a turn is in progress (sent, or being answered) and not yet complete.
        self._turn_open = False
        self._go_away_pending = False
        self._go_away_turn_done = False
        self._go_away_deadline = 0.0
        self._go_away_due = asyncio.Event()
        self._go_away_timer: asyncio.TimerHandle | None = None
        # Benchmark probe: called with ("audio" | "tool_response", seconds) per send.
        self.latency_probe: Callable[[str, float], None] | None = None

    # -- public API (LivePort) ---------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def resume_handle(self) -> str | None:
        return self._handle

    def set_listener(self, on_event: Callable[[LiveEvent], None]) -> None:
        self._listener = on_event

    def set_tool_dispatcher(self, dispatch: ToolDispatcher) -> None:
        """Who answers the model's function calls (the controller's tool registry)."""
        self._dispatch = dispatch

    def set_history(self, history: HistorySource) -> None:
        """Where a fresh server session reads the conversation so far (its seed)."""
        self._history = history

    def abandon_turn(self) -> None:
        """The controller gave the unanswered turn up: never send it again."""
        self._clear_pending()

    async def start(self, settings: LiveSettings) -> None:
        """Connects; returns once connected or failed (the events say which)."""
        if self._supervisor is not None and not self._supervisor.done():
            raise RuntimeError("the session is already started; use reconfigure()")
        previous, self._settings = self._settings, settings
        if previous is not None and _server_of(previous) != _server_of(settings):
            self.forget()  # a handle (and the transcript) belongs to its server and account
        self._failed_attempts = 0
        self._turn_open = False
        self._settled.clear()
        self._supervisor = asyncio.create_task(self._supervise(), name="live-session")
        await self._wait_settled()

    def _start_fresh_seeded(self) -> None:
        """The next link is a new server session that starts from the conversation."""
        self._handle = None
        self._seed_next = tuple(self._history())

    def forget(self) -> None:
        """Drops the resumption handle: the next `start()` begins a new conversation.
        (Without it, `start()` after `close()` or a failure resumes.)"""
        self._handle = None
        self._seed_next = ()
        self._completed_turns = 0

    async def reconfigure(self, settings: LiveSettings) -> None:
        """Reconnects with the handle and `settings`; fresh and seeded if refused. A new
        voice always starts fresh, seeded with the transcript: a resumed session can keep
        its old voice without saying so (live-protocol.md), and the user asked for it."""
        if self._supervisor is None or self._supervisor.done():
            await self.start(settings)
            return
        if self._settings is not None and settings.voice != self._settings.voice:
            self._start_fresh_seeded()
        self._settings = settings
        self._settled.clear()
        self._restart = _Failure("settings changed", reconfigure=True)
        self._kick.set()
        await self._wait_settled()

    async def close(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and not supervisor.done():
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        self._report_unsent("the session was closed", unanswered=False)
        if self._state is not LinkState.CLOSED:
            self._set_state(LinkState.CLOSED, reason="closed")

    def send_audio(self, pcm: bytes) -> None:
        if not pcm:
            return
        self._enqueue(_Outgoing(_Op.AUDIO, bytes(pcm), time.perf_counter()))

    def activity_start(self) -> None:
        self._enqueue(_Outgoing(_Op.START, None, time.perf_counter()))

    def activity_end(self) -> None:
        self._enqueue(_Outgoing(_Op.END, None, time.perf_counter()))

    async def send_text(self, text: str) -> None:
        self.queue_text(text)

    def queue_text(self, text: str) -> None:
        """`send_text` without a coroutine: queued in the order called."""
        if not text.strip():
            return
        self._enqueue(_Outgoing(_Op.TEXT, text, time.perf_counter()))

    # -- events ----------------------------------------------------------------------

    def _emit(self, event: LiveEvent) -> None:
        if self._listener is None:
            return
        try:
            self._listener(event)
        except Exception:  # a faulty listener must not stop the session
            log.exception("live event listener failed on %s", type(event).__name__)

    def _redact(self, text: str) -> str:
        key = self._settings.api_key if self._settings is not None else ""
        return redact(text, (key,))

    def _set_state(self, state: LinkState, **details: Any) -> None:
        self._state = state
        self._emit(LinkStateChanged(state, **details))
        if state in (LinkState.CONNECTED, LinkState.FAILED, LinkState.CLOSED):
            self._settled.set()

    async def _wait_settled(self) -> None:
        supervisor = self._supervisor
        assert supervisor is not None
        settled = asyncio.create_task(self._settled.wait())
        try:
            await asyncio.wait({settled, supervisor}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            settled.cancel()

    # -- outbox ----------------------------------------------------------------------

    def _enqueue(self, item: _Outgoing) -> None:
        self._outbox.append(item)
        if item.op is _Op.AUDIO:
            self._outbox_bytes += len(item.payload)
            self._trim_buffer()
        self._wake.set()

    def _trim_buffer(self) -> None:
        """Keeps queued plus replayable audio under the limit by dropping the oldest
        queued frames; the loss is reported, never silent."""
        if self._link is not None:
            return
        excess = self._outbox_bytes + self._pending_bytes - self._buffer_limit_bytes
        if excess <= 0:
            return
        dropped = 0
        kept: deque[_Outgoing] = deque()
        for item in self._outbox:
            if dropped < excess and item.op is _Op.AUDIO:
                dropped += len(item.payload)
                continue
            kept.append(item)
        self._outbox = kept
        self._outbox_bytes -= dropped
        seconds = dropped / MIC_BYTES_PER_SECOND
        self._dropped_s += seconds
        self._emit(AudioDropped(seconds, "the link is down and the audio buffer is full"))

    def _report_unsent(self, reason: str, *, unanswered: bool = True) -> None:
        unsent = self._outbox_bytes
        self._outbox.clear()
        self._outbox_bytes = 0
        if unanswered:
            # Sent on a lost link but never answered: the server does not have it either.
            unsent += self._pending_bytes
        self._clear_pending()
        if unsent:
            self._emit(AudioDropped(unsent / MIC_BYTES_PER_SECOND, reason))

    def _clear_pending(self) -> None:
        self._pending_started = self._pending_ended = self._pending_resent = False
        self._pending_text = None
        self._pending_audio.clear()
        self._pending_bytes = 0

    def _keep_pending_audio(self, pcm: bytes) -> None:
        self._pending_audio.append(pcm)
        self._pending_bytes += len(pcm)
        while self._pending_bytes > self._buffer_limit_bytes and len(self._pending_audio) > 1:
            self._pending_bytes -= len(self._pending_audio.popleft())

    async def _send_item(self, link: Any, item: _Outgoing) -> None:
        from google.genai import types

        if item.op is _Op.AUDIO:
            await link.send_realtime_input(audio=types.Blob(data=item.payload, mime_type=MIC_MIME))
        elif item.op is _Op.START:
            await link.send_realtime_input(activity_start=types.ActivityStart())
        elif item.op is _Op.END:
            await link.send_realtime_input(activity_end=types.ActivityEnd())
        else:
            await link.send_realtime_input(text=item.payload)

    def _mark_sent(self, item: _Outgoing) -> None:
        """Keep what went out of the turn the server has not completed (a new turn
        supersedes the previous one: the server takes it as an interruption)."""
        if item.op in (_Op.START, _Op.TEXT):
            self._turn_open = True
            self._clear_pending()
            if not self._budget.exceeded:
                # An over-limit reply still in flight is dropped until the server ends
                # it (interrupted, turnComplete), not counted against this turn.
                self._new_reply()
        if item.op is _Op.START:
            self._pending_started = True
        elif item.op is _Op.TEXT:
            self._pending_text = item.payload
            self._pending_ended = True
        elif item.op is _Op.END:
            self._pending_ended = True
        elif item.op is _Op.AUDIO:
            self._outbox_bytes -= len(item.payload)
            if self._pending_started or not self._push_to_talk:
                self._keep_pending_audio(item.payload)
            if self.latency_probe is not None:
                self.latency_probe("audio", time.perf_counter() - item.queued_at)

    @property
    def _push_to_talk(self) -> bool:
        return self._settings is None or self._settings.push_to_talk

    @property
    def _pending_turn(self) -> bool:
        """A whole user turn (not hands-free audio alone) awaits the server's answer."""
        return self._pending_text is not None or (self._push_to_talk and self._pending_started)

    async def _resend_pending(self, link: Any) -> None:
        """The user turn the old link did not see completed, sent again from its start:
        once. Lost unanswered a second time, it is given up, not sent forever."""
        if not self._pending_turn:
            if not self._push_to_talk:  # hands-free: the speech since the last reply
                await self._send_pending_audio(link)
            return
        if self._pending_resent and self._pending_ended:
            self._clear_pending()
            self._emit(
                TurnUndelivered("the connection was lost again before the turn was answered")
            )
            return
        from google.genai import types

        if self._pending_text is not None:
            await link.send_realtime_input(text=self._pending_text)
        else:
            await link.send_realtime_input(activity_start=types.ActivityStart())
            await self._send_pending_audio(link)
            if self._pending_ended:
                await link.send_realtime_input(activity_end=types.ActivityEnd())
        if self._pending_ended:
            self._pending_resent = True
        self._new_reply()
        self._emit(TurnResent())

    async def _send_pending_audio(self, link: Any) -> None:
        from google.genai import types

        for pcm in list(self._pending_audio):
            await link.send_realtime_input(audio=types.Blob(data=pcm, mime_type=MIC_MIME))

    def _new_reply(self) -> None:
        """A reply begins afresh: the per-turn limits and audio parsing start over."""
        self._budget.reset()
        self._carry, self._carry_rate = b"", 0
        self._skipped.clear()

    def _within(self, ok: bool) -> bool:
        """`ok` from the budget; the first time a limit is passed the turn is told."""
        if not ok and self._budget.exceeded and "limit" not in self._skipped:
            self._skipped.add("limit")
            log.warning("reply dropped: %s", self._budget.exceeded)
            self._emit(TurnLimitExceeded(self._budget.exceeded))
        return ok

    def _skip(self, kind: str, reason: str) -> None:
        """Refused server data: said once a reply, never raised."""
        if kind not in self._skipped:
            self._skipped.add(kind)
            log.warning("server data skipped: %s", reason)
            self._emit(SessionError(f"{reason}; skipped", retryable=True))

    def _turn_completed_by_server(self) -> None:
        """turnComplete: the server has the turn, there is nothing to send again. A
        push-to-talk turn still being spoken is not the one completed (an earlier one)."""
        if not self._push_to_talk or self._pending_ended or not self._pending_started:
            self._clear_pending()

    def _reply_interrupted(self) -> None:
        """Hands-free: the user spoke over the reply; only that new speech is owed.
        (Push-to-talk: the new activity_start already superseded the old turn.)"""
        if self._push_to_talk:
            return
        keep = int(INTERRUPTING_SPEECH_S * MIC_BYTES_PER_SECOND)
        while self._pending_bytes > keep and len(self._pending_audio) > 1:
            self._pending_bytes -= len(self._pending_audio.popleft())

    async def _send_loop(self, link: Any) -> None:
        await self._resend_pending(link)
        while True:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._outbox[0]
            await self._send_item(link, item)
            # Popped only once sent: a frame in flight when the link dies goes on the next.
            self._outbox.popleft()
            self._mark_sent(item)

    def _reply_started(self) -> None:
        """The server answers the user's turn; it stays owed until turnComplete."""
        self._turn_open = True

    # -- receiving -------------------------------------------------------------------

    async def _receive_loop(self, link: Any) -> None:
        while True:  # receive() ends after each turn_complete (and after a bad frame)
            messages = link.receive()
            while True:
                try:
                    message = await anext(messages)
                    received_at = time.perf_counter()  # the SDK has just parsed it
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    if _is_close(exc):
                        raise
                    # The SDK raises ValueError, TypeError, AttributeError, or an APIError
                    # without a close code, for a frame it cannot read; the link is still
                    # up. Its text holds the whole raw frame (transcripts, megabytes), so
                    # none of it is logged.
                    self._skip(
                        "frame", f"a malformed message from the server ({type(exc).__name__})"
                    )
                    break
                # Outside the try: an error of our own is a failure, not a bad frame.
                await self._handle_message(link, message, received_at)

    async def _handle_message(self, link: Any, message: Any, received_at: float) -> None:
        if message.tool_call is not None:
            calls = message.tool_call.function_calls or []
            if self._within(self._budget.take_tool_calls(len(calls))):
                self._start_tool_calls(link, calls, t_in=received_at)
        content = message.server_content
        if content is not None:
            self._handle_content(content)
        if message.tool_call_cancellation is not None:
            self._cancel_tool_calls(tuple(message.tool_call_cancellation.ids or ()))
        update = message.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self._handle = update.new_handle
            self._emit(ResumptionHandle(update.new_handle, True))
            if self._go_away_turn_done:
                raise _Failure("the server is going away; the turn is complete", go_away=True)
        usage = message.usage_metadata
        if usage is not None:
            self._emit(
                Usage(usage.prompt_token_count, usage.response_token_count, usage.total_token_count)
            )
        if message.go_away is not None:
            left = _time_left(message.go_away.time_left)
            self._emit(GoAway(left))
            self._on_go_away(left)

    def _on_go_away(self, time_left_s: float | None) -> None:
        """Reconnect now, or once the turn in progress completes (at the latest
        GO_AWAY_MARGIN_S before the server closes), so a reply is not cut off."""
        if not self._turn_open or time_left_s is None or time_left_s <= GO_AWAY_MARGIN_S:
            raise _Failure("the server is going away", go_away=True)
        if self._go_away_pending:
            return
        self._go_away_pending = True
        self._go_away_deadline = time.monotonic() + time_left_s - GO_AWAY_MARGIN_S
        self._arm_go_away_timer(time_left_s - GO_AWAY_MARGIN_S)

    def _arm_go_away_timer(self, delay_s: float) -> None:
        if self._go_away_timer is not None:
            self._go_away_timer.cancel()
        loop = asyncio.get_running_loop()
        self._go_away_timer = loop.call_later(max(0.0, delay_s), self._go_away_due.set)

    def _handle_content(self, content: Any) -> None:
        budget = self._budget
        if content.input_transcription is not None and content.input_transcription.text:
            piece = content.input_transcription
            if self._within(budget.take_text(len(piece.text))):
                self._emit(InputTranscript(piece.text, bool(piece.finished)))
        if content.model_turn is not None:
            self._reply_started()
            for part in content.model_turn.parts or []:  # every part: audio and text may mix
                blob = part.inline_data
                if blob is not None and blob.data:
                    self._reply_audio(blob.data, blob.mime_type or "")
                elif (
                    part.text
                    and not part.thought
                    and self._within(budget.take_text(len(part.text)))
                ):
                    self._handle_text(part.text)
        if content.output_transcription is not None and content.output_transcription.text:
            piece = content.output_transcription
            self._reply_started()
            if self._within(budget.take_text(len(piece.text))):
                self._emit(OutputTranscript(piece.text, bool(piece.finished)))
        if content.interrupted:
            self._reply_interrupted()
            self._new_reply()
            self._emit(Interrupted())
        if content.generation_complete:
            self._emit(GenerationComplete())
        if content.turn_complete:
            self._completed_turns += 1
            self._turn_completed_by_server()
            self._new_reply()
            self._failed_attempts = 0  # a full turn: the link works again
            self._turn_open = False
            self._emit(TurnComplete())
            if self._go_away_pending and not self._go_away_turn_done:
                # Reconnect with the handle that includes this turn (it follows shortly).
                self._go_away_turn_done = True
                left = self._go_away_deadline - time.monotonic()
                self._arm_go_away_timer(min(left, GO_AWAY_HANDLE_WAIT_S))

    def _reply_audio(self, data: bytes, mime: str) -> None:
        """Reply audio as PCM16 at a usable rate, never an exception: an odd byte waits
        for the next chunk, an unusable rate or format is refused per chunk."""
        kind, _, params = mime.partition(";")
        if kind.strip() and kind.strip().lower() != "audio/pcm":
            self._skip("format", f"reply audio in an unsupported format ({_short(kind)[:40]})")
            return
        match = _RATE_IN_MIME.search(params)
        rate = int(match.group(1)) if match else DEFAULT_REPLY_RATE
        if not MIN_REPLY_RATE <= rate <= MAX_REPLY_RATE:
            self._skip("rate", f"reply audio at an unusable rate ({rate} Hz)")
            return
        if self._carry and rate == self._carry_rate:
            data = self._carry + data
        if len(data) % 2:
            data, self._carry, self._carry_rate = data[:-1], data[-1:], rate
        else:
            self._carry = b""
        if data and self._within(self._budget.take_audio(len(data) / 2 / rate)):
            self._emit(AudioChunk(data, rate))

    def _handle_text(self, text: str) -> None:
        from emodesk.core.emotion_tool import REPORT_EMOTION_TOOL_NAME
        from emodesk.core.parsing import split_emotion_header

        parsed, rest = split_emotion_header(text)
        emotion_declared = self._settings is not None and declares(
            self._settings, REPORT_EMOTION_TOOL_NAME
        )
        if parsed is not None and emotion_declared:
            self._emit(EmotionReported(parsed, ""))
        if rest:
            self._emit(TextReply(rest))

    def _start_tool_calls(self, link: Any, calls: list[Any], t_in: float) -> None:
        """Each call goes to the dispatcher in a task of its own, so the receive loop keeps
        reading (a toolCallCancellation can follow); each is answered when its handler
        returns. `t_in` is the message's arrival (the turnaround probe's start)."""
        self._reply_started()
        for call in calls:
            call_id, name, args = call.id or "", call.name or "", dict(call.args or {})
            task = asyncio.create_task(self._answer_call(link, call_id, name, args, t_in))
            self._calls[call_id] = task
            task.add_done_callback(partial(self._call_done, call_id))

    async def _answer_call(
        self, link: Any, call_id: str, name: str, args: dict[str, Any], t_in: float
    ) -> None:
        from google.genai import types

        try:
            async with asyncio.timeout(TOOL_CALL_LIMIT_S):
                response = await self._dispatch(name, args)
        except TimeoutError:
            response = {"error": f"{name} did not finish within {TOOL_CALL_LIMIT_S:.0f} s"}
        except Exception as exc:  # a handler's bug is the model's error reply, not ours
            log.exception("the handler of %s failed", name)
            response = {"error": f"{name} failed: {type(exc).__name__}"}
        # The model's reply waits for this (calls block on 3.1).
        await link.send_tool_response(
            function_responses=[types.FunctionResponse(id=call_id, name=name, response=response)]
        )
        if self.latency_probe is not None:
            self.latency_probe("tool_response", time.perf_counter() - t_in)

    def _call_done(self, call_id: str, task: asyncio.Task[None]) -> None:
        self._calls.pop(call_id, None)
        if not task.cancelled() and task.exception() is not None:
            # Answering failed (the link, or our own bug): the link is done for, as when
            # the receive loop fails; the model would wait for the answer forever.
            self._call_failure = task.exception()
            self._call_failed.set()

    def _cancel_tool_calls(self, ids: tuple[str, ...]) -> None:
        """The server withdrew these calls (the reply was interrupted): their handlers
        stop and nothing is answered."""
        for call_id in ids:
            task = self._calls.pop(call_id, None)
            if task is not None:
                task.cancel()
        self._emit(ToolCallCancelled(ids))

    # -- connection supervision ------------------------------------------------------

    async def _make_client(self, settings: LiveSettings) -> Any:
        key = (settings.endpoint, settings.ca_file, settings.api_key, settings.api_version)
        if self._client is None or key != self._client_key:
            # Importing the SDK and building its client take ~0.5 s: not on the loop.
            self._client = await asyncio.to_thread(self._build_client, settings)
            self._client_key = key
        return self._client

    def _build_client(self, settings: LiveSettings) -> Any:
        preload_sdk()
        if self._client_factory is not None:
            return self._client_factory(settings)
        from emodesk.live.endpoint import make_client

        return make_client(settings)

    async def _supervise(self) -> None:
        attempt = 0
        first = True
        reason = ""
        while True:
            settings = self._settings
            assert settings is not None
            resuming = self._handle is not None
            if first:
                self._set_state(LinkState.CONNECTING)
            try:
                await self._run_link(settings, resume=self._handle)
                return  # not reached: _run_link ends by raising
            except _Failure as failure:
                outcome = failure
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outcome = classify(exc, during_setup=self._link is None, resuming=resuming)
            finally:
                self._link = None
            up_at, self._link_up_at = self._link_up_at, None
            # Library errors can quote what was sent, the key included (a bad header).
            reason = outcome.reason = self._redact(outcome.reason)
            if outcome.retryable and not outcome.refused_resume:
                log.info("live link lost: %s", reason)
            if outcome.token_refused and self._retry_token():
                self._set_state(
                    LinkState.RECONNECTING,
                    attempt=0,
                    delay_s=0.0,
                    reason=f"new access token: {reason}",
                )
                first = False
                continue
            if outcome.token_refused or (outcome.token and not outcome.retryable):
                message = (
                    f"The Live service refused the access token ({reason})."
                    if outcome.token_refused
                    else f"No access token from the token service: {reason}."
                )
                self._emit(SessionError(message, code=outcome.code))
                self._report_unsent("no access token")
                self._set_state(LinkState.FAILED, reason=message)
                return
            if outcome.auth:
                self._emit(
                    SessionError(
                        f"The API key was rejected ({reason}).", code=outcome.code, auth=True
                    )
                )
                self._report_unsent("the API key was rejected")
                self._set_state(LinkState.FAILED, reason=reason)
                return
            if not outcome.retryable:
                self._emit(SessionError(reason, code=outcome.code))
                self._report_unsent("the connection failed")
                self._set_state(LinkState.FAILED, reason=reason)
                return
            if outcome.refused_resume:
                # The old session cannot take this setup: start fresh, seeded.
                self._start_fresh_seeded()
                self._set_state(
                    LinkState.RECONNECTING,
                    attempt=0,
                    delay_s=0.0,
                    reason=f"fresh session: {reason}",
                )
                first = False
                continue
            if outcome.reconfigure:  # asked for: not a loss
                attempt = 0
                delay = 0.0
            else:
                up_for = time.monotonic() - up_at if up_at is not None else 0.0
                if up_for >= self._retry.stable_after_s:
                    self._failed_attempts = 0
                attempt = self._failed_attempts + 1
                if attempt > self._retry.max_attempts:
                    final = f"gave up after {attempt - 1} tries in a row: {reason}"
                    self._emit(SessionError(final[:1].upper() + final[1:], code=outcome.code))
                    self._report_unsent("the connection could not be restored")
                    self._set_state(LinkState.FAILED, reason=final)
                    return
                # A server going away is honoured at once, the first time in a row.
                first_go_away = outcome.go_away and attempt == 1
                delay = 0.0 if first_go_away else self._retry.delay(attempt, self._rng)
                if outcome.code is not None:
                    self._emit(SessionError(reason, code=outcome.code, retryable=True))
            self._failed_attempts = attempt
            self._set_state(LinkState.RECONNECTING, attempt=attempt, delay_s=delay, reason=reason)
            first = False
            if delay:
                await asyncio.sleep(delay)

    async def _run_link(self, settings: LiveSettings, resume: str | None) -> None:
        from emodesk.live.config import build_connect_config, model_name

        if resume is None and not self._seed_next and self._completed_turns:
            # No handle to resume with (the server never offered one, or it was lost):
            # a fresh server session must still know the conversation so far.
            self._seed_next = tuple(self._history())

        link_settings = await self._with_token(settings, resuming=resume is not None)
        client = await self._make_client(link_settings)
        seed = self._seed_turns() if resume is None else []
        config = build_connect_config(link_settings, resume, initial_history=bool(seed))
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self._connect_timeout_s):
                link = await stack.enter_async_context(
                    client.aio.live.connect(model=model_name(settings), config=config)
                )
            self._link = link
            self._seed_next = ()
            if self._keeper is not None and link_settings is not settings:
                self._keeper.connected(resuming=resume is not None)
                self._token_retried = False
            if seed:
                # With history_config.initial_history_in_client_content the server takes
                # client_content as history until turn_complete=True, without replying.
                await link.send_client_content(turns=seed, turn_complete=True)
            self._kick.clear()
            self._restart = None
            if self._settings is not settings:  # reconfigured while connecting
                raise _Failure("settings changed", reconfigure=True)
            self._link_up_at = time.monotonic()
            self._set_state(LinkState.CONNECTED, resumed=resume is not None)
            self._trim_buffer()
            await self._serve_then_close(link)

    async def _with_token(self, settings: LiveSettings, *, resuming: bool) -> LiveSettings:
        """`settings` with an ephemeral token in place of the key, when they name a token
        service; the same `settings` otherwise."""
        if not settings.token_url:
            self._keeper = self._keeper_url = None
            return settings
        if self._keeper is None or self._keeper_url != settings.token_url:
            try:
                source = self._token_source(settings)
            except ValueError as exc:
                raise _Failure(str(exc), retryable=False, token=True) from None
            self._keeper, self._keeper_url = TokenKeeper(source), settings.token_url
        _quiet_token_warning()
        try:
            token = await self._keeper.for_connect(resuming=resuming)
        except TokenError as exc:
            raise _Failure(exc.reason, retryable=exc.retryable, token=True) from None
        return dataclasses.replace(settings, api_key=token)

    def _retry_token(self) -> bool:
        """After a refused token: whether to connect again at once with a new one (once
        in a row, and only when the tokens come from a token service)."""
        if self._keeper is None:
            return False
        self._keeper.refused()
        if self._token_retried:
            return False
        self._token_retried = True
        return True

    def _seed_turns(self) -> list[Any]:
        from google.genai import types

        return [
            types.Content(role="model" if role == "model" else "user", parts=[types.Part(text=t)])
            for role, t in self._seed_next
            if t.strip()
        ]

    async def _serve_then_close(self, link: Any) -> None:
        """Serve the link; however that ends (closed by us, a reconnect, a failure),
        close it cleanly with 1000 rather than let the context manager say 1011."""
        try:
            await self._serve_link(link)
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await link.close()

    async def _serve_link(self, link: Any) -> None:
        self._go_away_pending = self._go_away_turn_done = False
        self._go_away_due.clear()
        sender = asyncio.create_task(self._send_loop(link), name="live-send")
        receiver = asyncio.create_task(self._receive_loop(link), name="live-receive")
        kick = asyncio.create_task(self._kick.wait(), name="live-kick")
        go_away = asyncio.create_task(self._go_away_due.wait(), name="live-go-away")
        self._call_failed.clear()
        call_failed = asyncio.create_task(self._call_failed.wait(), name="live-call-failed")
        tasks: set[asyncio.Task[Any]] = {sender, receiver, kick, go_away, call_failed}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks |= set(self._calls.values())  # calls of a closing link go unanswered
            self._calls.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._go_away_timer is not None:
                self._go_away_timer.cancel()
                self._go_away_timer = None
        if kick in done:
            raise self._restart or _Failure("settings changed", reconfigure=True)
        if go_away in done:
            raise _Failure("the server is going away; its time is nearly up", go_away=True)
        if call_failed in done and self._call_failure is not None:
            failure, self._call_failure = self._call_failure, None
            if isinstance(failure, _Failure):
                raise failure
            raise classify(failure, during_setup=False, resuming=False) from failure
        for task in (receiver, sender):
            if task in done and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                assert exc is not None
                if isinstance(exc, _Failure):
                    raise exc
                raise classify(exc, during_setup=False, resuming=False) from exc
        raise _Failure("the connection ended")
