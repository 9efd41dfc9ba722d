"""The Live emulator: a TLS WebSocket server on loopback serving BidiGenerateContent.

It enforces the protocol as Google's server does (setup first, activity signals only
with automatic detection off, audio mime and rate checked; a wrong message closes with
1007 and a reason), answers every user turn (input transcription, a
`report_user_emotion` call when the tool is declared, with values from its own rule
(`model_rule`: words of a typed turn, loudness of a spoken one; never the app's
estimator), then synthetic speech at 24 kHz with its transcription), honours barge-in,
hands out resumption handles and resumes from them, takes initial history
(`historyConfig.initialHistoryInClientContent`), and injects faults by schedule
(`faults`) or on demand (`arm`).

With `record=True` (tests) every client message is kept, as parsed JSON, in `received`
(all connections) and in `connections[i].received`, so tests can check what went over
the wire, and every turn record keeps its audio. The app's offline demo leaves it off:
the wire log would hold all the user's audio; only the newest turns keep theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http
import itertools
import json
import logging
import re
import secrets
import shutil
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from emodesk.core.emotion_tool import REPORT_EMOTION_TOOL_NAME
from emodesk.core.pcm import MIC_RATE
from emodesk.core.tools import NEXT_TOPIC, SEARCH_COURSE_MATERIAL, SEARCH_KNOWLEDGE_BASE
from emodesk.live.emulator.faults import FaultKind, FaultPlan, parse_faults
from emodesk.live.emulator.synth import OUTPUT_RATE, synthesize
from emodesk.live.emulator.tls import Certificate, make_certificate
from emodesk.live.emulator.tokens import (
    KEYS_REFUSED,
    TOKEN_CLOSE_CODE,
    TOKEN_PREFIX,
    TOKEN_WRONG_ENDPOINT,
    TokenStore,
)
from emodesk.live.emulator.wire import (
    WireError,
    decode_b64,
    duration_string,
    encode_b64,
    normalize_keys,
    pcm_rate,
)

log = logging.getLogger(__name__)

EMOTION_TOOL_NAME = REPORT_EMOTION_TOOL_NAME
_PATH = re.compile(
    r"^/ws/google\.ai\.generativelanguage\.(v1|v1alpha|v1beta)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)$"
)
_CLIENT_KEYS = frozenset(
    {"setup", "client_content", "realtime_input", "tool_response", "context_update"}
)
_REALTIME_KEYS = frozenset(
    {"audio", "video", "media_chunks", "text", "activity_start", "activity_end",
     "audio_stream_end"}
)  # fmt: skip
BAD_KEY_REASON = "API key not valid. Please pass a valid API key."
_CONSTRAINED_PATH = (
    "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
)
CHUNK_MS = 40  # reply audio per frame, as the real service sends it (1,920 bytes)
GOAWAY_TIME_LEFT_S = 1.0
# goawayreply: the time a client is given to finish the reply in progress.
GOAWAY_REPLY_TIME_LEFT_S = 50.0
# A frame cut short, as large and as private as a real one (a transcript).
MALFORMED_FRAME = b'{"serverContent": {"outputTranscription": {"text": "' + b"private words " * 400
# malformed: that frame, then valid JSON that is not an object, then an object that
# names nothing the protocol knows.
MALFORMED_FRAMES = (MALFORMED_FRAME, b'"private words"', b'{"privateWords": 1}')
# badreply: valid JSON that the SDK cannot read (parts must be a list).
BAD_REPLY_FRAME = {"serverContent": {"modelTurn": {"parts": 7}}}
# Resumption snapshots kept (newest first out last); older handles are expired.
MAX_SESSION_HANDLES = 64
# History a snapshot carries, in (role, text) entries, as a compressed context would.
MAX_HISTORY_ENTRIES = 200
# Turns whose audio is kept (the newest) when not recording: the app's offline demo runs
# the emulator in its own process, where every turn's audio kept would grow its memory
# by 32 kB per second spoken, and hold the user's speech longer than answering needs.
TURN_AUDIO_KEPT = 8
# Hands-free: a frame louder than this (RMS of int16) is speech.
VAD_RMS_THRESHOLD = 300.0


# The words in a user's turn (its text, or a typed turn) that make the emulator call a
# declared function: "search for <query>" (the knowledge base, or the course material),
# "next topic". Documented for the offline demo and the tests.
TOOL_CUES = (
    (
        re.compile(r"search for (?P<query>[^.?!]+)", re.I),
        (SEARCH_KNOWLEDGE_BASE, SEARCH_COURSE_MATERIAL),
    ),
    (re.compile(r"next topic", re.I), (NEXT_TOPIC,)),
)


def cued_calls(text: str, declared: Collection[str]) -> list[tuple[str, dict[str, Any]]]:
    """(name, args) for each declared function the text cues, in cue order."""
    calls: list[tuple[str, dict[str, Any]]] = []
    for cue, names in TOOL_CUES:
        match = cue.search(text)
        name = next((n for n in names if n in declared), None)
        if match is None or name is None:
            continue
        query = match.groupdict().get("query")
        calls.append((name, {"query": query.strip()} if query else {}))
    return calls


def _cited(response: dict[str, Any] | None) -> list[str]:
    """The files a function's answer names (its passages' `file`, a topic's `file`)."""
    body = (response or {}).get("response") or {}
    files = [str(p.get("file")) for p in body.get("passages") or [] if isinstance(p, dict)]
    if body.get("file"):
        files.append(str(body["file"]))
    return [f for f in files if f and f != "None"]


class _Close(Exception):
    """Ends a connection with a close frame (or an abrupt drop when code is None)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


@dataclass
class TurnRecord:
    """One user turn as the emulator saw it."""

    number: int
    audio: bytearray = field(default_factory=bytearray)
    rate: int = MIC_RATE
    text: str = ""
    tool_call_id: str | None = None
    tool_args: dict[str, Any] | None = None
    tool_response: dict[str, Any] | None = None
    # Other functions called for this turn: (name, args, response).
    other_calls: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = field(
        default_factory=list
    )
    reply_text: str = ""
    reply_bytes: int = 0
    interrupted: bool = False
    completed: bool = False
    released_s: float | None = None  # the audio's length, once its bytes were let go

    @property
    def audio_seconds(self) -> float:
        if self.released_s is not None:
            return self.released_s
        return len(self.audio) / 2 / self.rate

    def release_audio(self) -> None:
        """Lets the audio go, keeping its length (`audio_seconds`)."""
        self.released_s = self.audio_seconds
        self.audio = bytearray()


@dataclass
class SessionState:
    """What a resumption handle restores. `history` is a tuple, so snapshots share it."""

    session_id: str
    voice: str
    tools: tuple[str, ...]
    system_instruction: str
    turns: int = 0
    history: tuple[tuple[str, str], ...] = ()

    def remember(self, *entries: tuple[str, str]) -> None:
        self.history = (*self.history, *entries)[-MAX_HISTORY_ENTRIES:]


@dataclass
class ConnectionRecord:
    index: int
    path: str
    api_key: str | None = field(repr=False)
    received: list[dict[str, Any]] = field(default_factory=list, repr=False)
    setup: dict[str, Any] | None = None
    resumed_from: str | None = None
    turns: list[TurnRecord] = field(default_factory=list)
    close_code: int | None = None  # the emulator's own close, if it closed first
    close_reason: str = ""
    dropped: bool = False
    client_close_code: int | None = None  # the close frame the client sent, if any


def credential_of(request: Request) -> str | None:
    """The key or ephemeral token a handshake carries: `Authorization: Token ...` (how
    the SDK sends a token), an `access_token` query parameter (the JavaScript SDK's
    way), else `x-goog-api-key`."""
    authorization = request.headers.get("Authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "token" and value.strip():
        return value.strip()
    query = parse_qs(urlsplit(request.path).query).get("access_token")
    if query and query[0]:
        return query[0]
    return request.headers.get("x-goog-api-key") or None


def _system_text(setup: dict[str, Any]) -> str:
    content = setup.get("system_instruction") or {}
    if isinstance(content, str):
        return content
    parts = content.get("parts") or []
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def _tool_names(setup: dict[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    for tool in setup.get("tools") or []:
        for declaration in tool.get("function_declarations") or []:
            names.append(str(declaration.get("name", "")))
    return tuple(names)


def _voice(setup: dict[str, Any]) -> str:
    speech = (setup.get("generation_config") or {}).get("speech_config") or {}
    voice = (speech.get("voice_config") or {}).get("prebuilt_voice_config") or {}
    return str(voice.get("voice_name") or "Puck")


# The emulator's stand-in for the model's judgment, on purpose not the app's acoustic
# estimator (the demo's two timeline tracks would otherwise be one judge twice):
# a typed turn by its words, a spoken turn by how loud it was, nothing else.
_WORD_EMOTIONS = (
    ("angry", ("angry", "furious", "annoyed", "outrageous", "unacceptable")),
    ("anxious", ("worried", "anxious", "nervous", "hurry", "urgent", "scared")),
    ("sad", ("sad", "down", "unhappy", "tired", "lonely", "disappointed")),
    ("happy", ("happy", "great", "glad", "thanks", "thank", "wonderful")),
)


def model_rule(pcm: np.ndarray, text: str = "") -> dict[str, Any]:
    """The emulator's emotion report for a turn: for a typed turn the first label whose
    words it contains (else neutral); for a spoken turn loudness alone: above -14 dBFS
    angry/high, above -30 dBFS neutral/medium, quieter sad/low."""
    if text:
        words = set(re.findall(r"[a-z]+", text.lower()))
        for emotion, cues in _WORD_EMOTIONS:
            if words.intersection(cues):
                return {"emotion": emotion, "confidence": 0.7, "energy_level": "medium"}
        return {"emotion": "neutral", "confidence": 0.6, "energy_level": "medium"}
    if pcm.size == 0:
        return {"emotion": "neutral", "confidence": 0.3, "energy_level": "low"}
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
    dbfs = 20 * np.log10(max(rms, 1.0) / 32768.0)
    if dbfs > -14:
        return {"emotion": "angry", "confidence": 0.55, "energy_level": "high"}
    if dbfs > -30:
        return {"emotion": "neutral", "confidence": 0.6, "energy_level": "medium"}
    return {"emotion": "sad", "confidence": 0.5, "energy_level": "low"}


class EmulatorServer:
    """`await start()`, then point a client at `url` trusting `ca_file`; `await stop()`.

    `speed` divides the reply pacing (1.0: real time; tests use a large value).
    `api_keys`: the keys accepted (None: any non-empty key). `resume_accepts_changes`:
    False makes a resumed setup with a different voice or tools fail with 1007, as a
    server that cannot carry the change would. `record`: keep every client message in
    `received` (tests); off, nothing the user sends is kept beyond the turn records.
    `hears`: what the emulator "hears" in spoken turns, one text per turn in order (its
    stand-in for speech recognition, so a spoken file can cue `TOOL_CUES`); a spoken
    turn past the script is heard as its length, as always.
    `tokens`: the ephemeral tokens minted on the REST side (`rest.RestSide`), accepted
    on the v1alpha constrained endpoint; `require_tokens` refuses plain API keys.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | str = "",
        *,
        speed: float = 1.0,
        api_keys: Collection[str] | None = None,
        resume_accepts_changes: bool = True,
        resumable: bool = True,
        tool_response_timeout_s: float = 10.0,
        slow_delay_s: float = 2.0,
        cert_dir: Path | None = None,
        record: bool = False,
        hears: Iterable[str] = (),
        require_tokens: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.faults = parse_faults(faults) if isinstance(faults, str) else faults
        self.speed = max(speed, 1e-3)
        self.api_keys = None if api_keys is None else frozenset(api_keys)
        self.resume_accepts_changes = resume_accepts_changes
        self.resumable = resumable  # False: updates say resumable=false, with no handle
        self.tool_response_timeout_s = tool_response_timeout_s
        self.slow_delay_s = slow_delay_s
        self._cert_dir = cert_dir
        self.certificate: Certificate | None = None
        self.record = record
        self.hears = deque(hears)
        self.tokens = TokenStore()
        self.require_tokens = require_tokens
        self.minted: list[dict[str, Any]] = []  # create-token request bodies, as received
        self.received: list[dict[str, Any]] = []
        self.connections: list[ConnectionRecord] = []
        self._with_audio: deque[TurnRecord] = deque()  # not recording: the newest turns
        self._links: set[_Connection] = set()  # the open ones
        self.sessions: OrderedDict[str, SessionState] = OrderedDict()  # handle -> snapshot
        self._fired: set[tuple[FaultKind, int]] = set()
        self._armed: list[FaultKind] = []
        self._server: Server | None = None
        self._changed = asyncio.Condition()
        # The model's emotion report: (pcm, rate) -> args; tests may script it.
        self._estimate: Callable[[np.ndarray, int], dict[str, Any]] = lambda pcm, rate: model_rule(
            pcm
        )

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self.certificate = make_certificate(self._cert_dir)
        try:
            self._server = await serve(
                self._handle,
                self.host,
                self.port,
                ssl=self.certificate.server_context(),
                process_request=self._check_request,
                max_size=16 * 1024 * 1024,
                compression=None,
            )
        except BaseException:
            await self.stop()  # no private key left behind by a failed start
            raise
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None
        if self.certificate is not None and self._cert_dir is None:
            # The temporary certificate dir was ours; nothing may trust it any more.
            shutil.rmtree(self.certificate.cert_file.parent, ignore_errors=True)

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> str:
        if self.certificate is None:
            raise RuntimeError("the emulator is not started")
        return str(self.certificate.cert_file)

    # -- test hooks ------------------------------------------------------------------

    def arm(self, kind: FaultKind | str) -> None:
        """Fire `kind` at the next turn (of whichever connection has it first)."""
        self._armed.append(FaultKind(kind))

    def drop_open_connections(self) -> int:
        """Cut the TCP of every open connection now (a network drop while idle); returns
        how many were cut."""
        links = list(self._links)
        for link in links:
            link.fail(None)  # as a DROP fault does
        return len(links)

    async def wait_until(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        """Waits until `predicate()` holds after some server activity; TimeoutError if not."""
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def all_turns(self) -> list[TurnRecord]:
        return [turn for conn in self.connections for turn in conn.turns]

    def _keep_audio_of(self, turn: TurnRecord) -> None:
        """Recording, every turn keeps its audio; otherwise the newest `TURN_AUDIO_KEPT`
        do (the one being answered among them); older ones keep only their length."""
        if self.record:
            return
        self._with_audio.append(turn)
        while len(self._with_audio) > TURN_AUDIO_KEPT:
            self._with_audio.popleft().release_audio()

    # -- handshake -------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = re.sub(r"/{2,}", "/", request.path.split("?", 1)[0])
        if not _PATH.match(path):
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"no such service: {path}\n")
        if not credential_of(request):
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "missing API key\n")
        return None

    def _refusal(self, record: ConnectionRecord, setup: dict[str, Any]) -> str | None:
        """Why the credential may not open this session (a token spends a use here)."""
        credential = record.api_key or ""
        if not credential.startswith(TOKEN_PREFIX):
            if self.require_tokens:
                return KEYS_REFUSED
            if self.api_keys is not None and credential not in self.api_keys:
                return BAD_KEY_REASON
            return None
        if re.sub(r"/{2,}", "/", record.path.split("?", 1)[0]) != _CONSTRAINED_PATH:
            return TOKEN_WRONG_ENDPOINT
        resuming = bool((setup.get("session_resumption") or {}).get("handle"))
        return self.tokens.admit(credential, model=str(setup.get("model")), resuming=resuming)

    # -- one connection --------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        record = ConnectionRecord(
            index=len(self.connections),
            path=ws.request.path,
            api_key=credential_of(ws.request),
        )
        self.connections.append(record)
        await self._notify()
        link = _Connection(self, ws, record)
        self._links.add(link)
        try:
            await link.run()
        except _Close as close:
            if close.code is None:
                record.dropped = True
                ws.transport.abort()
            else:
                record.close_code = close.code
                record.close_reason = close.reason
                await ws.close(close.code, close.reason)
        except ConnectionClosed:
            pass
        finally:
            close_rcvd = ws.protocol.close_rcvd
            if close_rcvd is not None:
                record.client_close_code = close_rcvd.code
            self._links.discard(link)
            await link.shutdown()
            await self._notify()

    def _take_fault(self, kind: FaultKind, turn: int) -> bool:
        """Whether `kind` fires now (at `turn`), leaving the other faults untouched."""
        for fault in self.faults.faults:
            if fault.kind is not kind:
                continue
            if fault.turn is None:
                return True
            if fault.turn == turn and (kind, turn) not in self._fired:
                self._fired.add((kind, turn))
                return True
        return False

    def _take_faults(self, turn: int) -> set[FaultKind]:
        kinds: set[FaultKind] = set()
        for fault in self.faults.faults:
            if fault.turn is None:
                kinds.add(fault.kind)
            elif fault.turn == turn and (fault.kind, turn) not in self._fired:
                self._fired.add((fault.kind, turn))
                kinds.add(fault.kind)
        kinds.update(self._armed)
        self._armed.clear()
        return kinds


class _Connection:
    """The protocol state of one WebSocket connection."""

    def __init__(self, server: EmulatorServer, ws: ServerConnection, record: ConnectionRecord):
        self.server = server
        self.ws = ws
        self.record = record
        self.state: SessionState | None = None
        self.manual_activity = False
        self.resumption = False
        self.vad_silence_s = 0.5
        self.turn: TurnRecord | None = None  # collecting input
        self.turn_faults: set[FaultKind] = set()
        self.silence_s = 0.0
        self.reply: asyncio.Task[None] | None = None
        self.pending_calls: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.closing: _Close | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        # historyConfig.initialHistoryInClientContent: client_content is history until
        # turn_complete; realtime input before that is an error.
        self.awaiting_history = False

    async def send(self, message: dict[str, Any]) -> None:
        # Google sends JSON in binary frames.
        await self.ws.send(json.dumps(message).encode("utf-8"))

    async def shutdown(self) -> None:
        for task in [self.reply, *self.tasks]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def fail(self, code: int | None, reason: str = "") -> None:
        """Ask the read loop to close the connection (from a reply task)."""
        self.closing = _Close(code, reason)
        if code is None:
            self.record.dropped = True
            self.ws.transport.abort()
        else:
            self.record.close_code = code
            self.record.close_reason = reason
            task = asyncio.create_task(self.ws.close(code, reason))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def run(self) -> None:
        async for raw in self.ws:
            if self.closing is not None:
                return
            try:
                message = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise _Close(1007, "Invalid JSON payload received.") from None
            if not isinstance(message, dict):
                raise _Close(1007, "Invalid JSON payload received: not an object.")
            if self.server.record:
                self.record.received.append(message)
                self.server.received.append(message)
            await self.server._notify()
            try:
                await self.dispatch(normalize_keys(message))
            except WireError as exc:
                raise _Close(1007, str(exc)[:120]) from None

    async def dispatch(self, message: dict[str, Any]) -> None:
        keys = set(message)
        unknown = keys - _CLIENT_KEYS
        if unknown or len(keys) != 1:
            raise WireError(
                f"Invalid JSON payload received. Unknown name {sorted(unknown or keys)[0]!r}"
                if unknown
                else "Exactly one of setup, client_content, realtime_input, tool_response"
            )
        (kind,) = keys
        body = message[kind]
        if kind == "setup":
            await self.on_setup(body)
            return
        if self.state is None:
            raise WireError("The first message must be setup.")
        if not isinstance(body, dict):
            raise WireError(f"{kind} must be an object")
        if self.awaiting_history and kind != "client_content":
            raise WireError(
                f"{kind} before the initial history is complete: send client_content "
                "with turn_complete=true first (history_config)."
            )
        if kind == "realtime_input":
            await self.on_realtime_input(body)
        elif kind == "tool_response":
            self.on_tool_response(body)
        elif kind == "client_content":
            await self.on_client_content(body)
        # context_update: accepted, nothing to do for synthetic replies.

    # -- setup -----------------------------------------------------------------------

    async def on_setup(self, setup: Any) -> None:
        if self.state is not None:
            raise WireError("setup may only be sent once, as the first message.")
        if not isinstance(setup, dict):
            raise WireError("setup must be an object")
        self.record.setup = setup
        refusal = self.server._refusal(self.record, setup)
        if refusal is not None:
            raise _Close(TOKEN_CLOSE_CODE, refusal)
        model = setup.get("model")
        if not isinstance(model, str) or not model.startswith("models/"):
            raise WireError("setup.model is required, as models/{model}")
        modalities = (setup.get("generation_config") or {}).get("response_modalities") or []
        if any(str(m).upper() != "AUDIO" for m in modalities):
            raise WireError("Cannot extract voices from a non-audio request: AUDIO only.")
        detection = (setup.get("realtime_input_config") or {}).get(
            "automatic_activity_detection"
        ) or {}
        self.manual_activity = bool(detection.get("disabled"))
        self.vad_silence_s = float(detection.get("silence_duration_ms") or 500) / 1000
        resumption = setup.get("session_resumption")
        self.resumption = resumption is not None
        handle = (resumption or {}).get("handle")
        history = setup.get("history_config") or {}
        self.awaiting_history = bool(history.get("initial_history_in_client_content"))
        voice, tools, system = _voice(setup), _tool_names(setup), _system_text(setup)
        if handle:
            snapshot = self.server.sessions.get(handle)
            if snapshot is None:
                raise _Close(1007, "Session resumption handle is invalid or expired.")
            if not self.server.resume_accepts_changes and (
                snapshot.voice != voice or snapshot.tools != tools
            ):
                raise _Close(1007, "A resumed session cannot change the voice or tools.")
            self.state = dataclasses.replace(
                snapshot, voice=voice, tools=tools, system_instruction=system
            )
            self.record.resumed_from = handle
        else:
            self.state = SessionState(
                session_id=secrets.token_hex(8),
                voice=voice,
                tools=tools,
                system_instruction=system,
            )
        next_turn = self.state.turns + 1
        if self.server._take_fault(FaultKind.BAD_SETUP_REPLY, next_turn):
            await self.ws.send(MALFORMED_FRAME * 180)  # 900 kB, under the 1 MiB frame limit
            return
        if self.server._take_fault(FaultKind.NO_SETUP_REPLY, next_turn):
            return
        await self.send({"setupComplete": {"sessionId": self.state.session_id}})
        await self.send_handle()
        if self.server._take_fault(FaultKind.GOAWAY_AT_SETUP, self.state.turns + 1):
            self.go_away(GOAWAY_TIME_LEFT_S)

    async def send_handle(self) -> None:
        if not self.resumption or self.state is None:
            return
        if not self.server.resumable:
            await self.send({"sessionResumptionUpdate": {"resumable": False}})
            return
        handle = f"h-{secrets.token_urlsafe(12)}"
        sessions = self.server.sessions
        sessions[handle] = dataclasses.replace(self.state)  # shallow: history is shared
        while len(sessions) > MAX_SESSION_HANDLES:
            sessions.popitem(last=False)
        await self.send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    # -- input -----------------------------------------------------------------------

    async def on_realtime_input(self, body: dict[str, Any]) -> None:
        fields = set(body) & _REALTIME_KEYS
        if set(body) - _REALTIME_KEYS:
            raise WireError(f"Unknown name {sorted(set(body) - _REALTIME_KEYS)[0]!r}")
        if len(fields) != 1:
            raise WireError("realtime_input takes exactly one field.")
        (name,) = fields
        if name in ("activity_start", "activity_end") and not self.manual_activity:
            raise WireError(
                "Explicit activity control is not supported when automatic activity "
                "detection is enabled."
            )
        if name == "audio_stream_end" and self.manual_activity:
            raise WireError("audio_stream_end is only for automatic activity detection.")
        if name == "activity_start":
            await self.begin_turn()
        elif name == "activity_end":
            if self.turn is None:
                raise WireError("activity_end without activity_start.")
            await self.end_turn()
        elif name in ("audio", "media_chunks"):
            blobs = body[name] if name == "media_chunks" else [body[name]]
            for blob in blobs:
                if not isinstance(blob, dict):
                    raise WireError("audio must be a Blob object")
                rate = pcm_rate(blob.get("mime_type"))
                pcm = decode_b64(blob.get("data", ""))
                if len(pcm) % 2:
                    raise WireError("audio/pcm data must be whole 16-bit samples.")
                await self.on_audio(pcm, rate)
        elif name == "audio_stream_end":
            if self.turn is not None:
                await self.end_turn()
        elif name == "text":
            await self.interrupt_reply()
            self.turn = self.new_turn()
            self.turn.text = str(body["text"])
            await self.end_turn()
        # video: accepted and ignored.

    def new_turn(self) -> TurnRecord:
        assert self.state is not None
        turn = TurnRecord(number=self.state.turns + 1)
        self.record.turns.append(turn)
        self.server._keep_audio_of(turn)
        return turn

    async def begin_turn(self) -> None:
        await self.interrupt_reply()
        self.turn = self.new_turn()
        self.silence_s = 0.0
        self.turn_faults = self.server._take_faults(self.turn.number)
        if FaultKind.GOAWAY in self.turn_faults:
            self.go_away(GOAWAY_TIME_LEFT_S)

    def go_away(self, time_left_s: float) -> None:
        """Says goAway with `time_left_s`, then closes the connection when it runs out."""
        task = asyncio.create_task(self._go_away(time_left_s))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _go_away(self, time_left_s: float) -> None:
        await self.send({"goAway": {"timeLeft": duration_string(time_left_s)}})
        await self._close_after(time_left_s)

    async def _close_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.fail(1000, "Going away: connection time limit reached.")

    async def on_audio(self, pcm: bytes, rate: int) -> None:
        if self.manual_activity:
            if self.turn is not None:
                self.turn.audio += pcm
                self.turn.rate = rate
            return
        # Automatic activity detection: a plain energy detector.
        samples = np.frombuffer(pcm, dtype="<i2")
        loud = samples.size > 0 and float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > (
            VAD_RMS_THRESHOLD
        )
        seconds = len(pcm) / 2 / rate
        if self.turn is None:
            if not loud:
                return
            await self.begin_turn()
        assert self.turn is not None
        self.turn.audio += pcm
        self.turn.rate = rate
        self.silence_s = 0.0 if loud else self.silence_s + seconds
        if self.silence_s >= self.vad_silence_s:
            await self.end_turn()

    async def end_turn(self) -> None:
        turn, self.turn = self.turn, None
        assert turn is not None
        faults = self.turn_faults | self.server._take_faults(turn.number)
        self.turn_faults = set()
        if FaultKind.DROP in faults:
            raise _Close(None)
        if FaultKind.CLOSE_1011 in faults:
            raise _Close(1011, "Internal error encountered.")
        if FaultKind.CLOSE_1007 in faults:
            raise _Close(1007, "Request contains an invalid argument.")
        if not turn.text and self.server.hears:  # heard once it is answered
            turn.text = self.server.hears.popleft()
        self.reply = asyncio.create_task(self.answer(turn, faults))

    async def on_client_content(self, body: dict[str, Any]) -> None:
        assert self.state is not None
        if not self.awaiting_history:
            # gemini-3.1-flash-live: client_content is for the initial history only.
            raise _Close(1007, "Request contains an invalid argument.")
        for content in body.get("turns") or []:
            role = str(content.get("role") or "user")
            text = "".join(str(p.get("text", "")) for p in content.get("parts") or [])
            self.state.remember((role, text))
        # Initial history: no model call; turn_complete ends it.
        self.awaiting_history = not body.get("turn_complete")
        await self.server._notify()

    def on_tool_response(self, body: dict[str, Any]) -> None:
        for response in body.get("function_responses") or []:
            call_id = response.get("id")
            if not call_id:
                raise WireError("FunctionResponse must have an id from the tool call.")
            future = self.pending_calls.pop(str(call_id), None)
            if future is not None and not future.done():
                future.set_result(response)

    # -- replies ---------------------------------------------------------------------

    async def interrupt_reply(self) -> None:
        reply, self.reply = self.reply, None
        if reply is None or reply.done():
            return
        reply.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reply

    async def answer(self, turn: TurnRecord, faults: set[FaultKind]) -> None:
        assert self.state is not None
        state = self.state
        calls: list[str] = []
        started = False
        try:
            if FaultKind.MALFORMED in faults:
                for frame in MALFORMED_FRAMES:
                    await self.ws.send(frame)
            if FaultKind.SLOW in faults:
                await asyncio.sleep(self.server.slow_delay_s)
            heard = turn.text or f"[{turn.audio_seconds:.2f} s of speech]"
            await self.send(
                {"serverContent": {"inputTranscription": {"text": heard, "finished": True}}}
            )
            if EMOTION_TOOL_NAME in state.tools:
                await self.ask_emotion(turn, calls)
                if FaultKind.DROP_AFTER_TOOL in faults:
                    self.fail(None)
                    return
            citing = await self.call_cued_tools(turn, calls)
            reply_text = (
                f"Synthetic reply {turn.number}, in the voice {state.voice}, "
                f"to {heard.strip('[]')}{citing}."
            )
            turn.reply_text = reply_text
            started = True
            if FaultKind.FLOOD in faults or FaultKind.TEXT_FLOOD in faults:
                await self.flood(turn, text=FaultKind.TEXT_FLOOD in faults)
                return
            if FaultKind.TEXT_REPLY in faults:
                await self.send_text_reply(turn, reply_text)
            elif not await self.stream_reply(turn, reply_text, faults):
                return  # cut off halfway by a fault
            await self.send({"serverContent": {"generationComplete": True}})
            await self.send({"serverContent": {"turnComplete": True}})
            await self.send(
                {
                    "usageMetadata": {
                        "promptTokenCount": 25 * turn.number,
                        "responseTokenCount": len(reply_text) // 4,
                        "totalTokenCount": 25 * turn.number + len(reply_text) // 4,
                    }
                }
            )
            turn.completed = True
            state.turns = turn.number
            state.remember(("user", heard), ("model", reply_text))
            await self.send_handle()
        except asyncio.CancelledError:
            turn.interrupted = True
            state.turns = turn.number
            if calls and any(c in self.pending_calls for c in calls):
                with contextlib.suppress(ConnectionClosed):
                    await self.send({"toolCallCancellation": {"ids": calls}})
            if started or calls:
                with contextlib.suppress(ConnectionClosed):
                    await self.send({"serverContent": {"interrupted": True}})
            raise
        except ConnectionClosed:
            pass
        finally:
            for call_id in calls:
                self.pending_calls.pop(call_id, None)
            await self.server._notify()

    async def ask_emotion(self, turn: TurnRecord, calls: list[str]) -> None:
        args = await self.judge(turn)
        response = await self.call(turn, EMOTION_TOOL_NAME, args, calls)
        turn.tool_call_id, turn.tool_args, turn.tool_response = calls[-1], args, response

    async def judge(self, turn: TurnRecord) -> dict[str, Any]:
        """The emulator's emotion report for `turn` (`model_rule`, or a test's script)."""
        if turn.text:
            return model_rule(np.zeros(0, np.int16), turn.text)
        pcm = np.frombuffer(bytes(turn.audio), dtype="<i2")
        return await asyncio.to_thread(self.server._estimate, pcm, turn.rate)

    async def call_cued_tools(self, turn: TurnRecord, calls: list[str]) -> str:
        """The declared functions the user's words ask for (`TOOL_CUES`), called in turn;
        returns what the reply cites of their answers."""
        assert self.state is not None
        cited: list[str] = []
        for name, args in cued_calls(turn.text, self.state.tools):
            response = await self.call(turn, name, args, calls)
            turn.other_calls.append((name, args, response))
            cited += _cited(response)
        return f" (from {', '.join(dict.fromkeys(cited))})" if cited else ""

    async def call(
        self, turn: TurnRecord, name: str, args: dict[str, Any], calls: list[str]
    ) -> dict[str, Any] | None:
        """One blocking function call (as on 3.1: nothing more until it is answered)."""
        call_id = f"function-call-{secrets.token_hex(6)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending_calls[call_id] = future
        calls.append(call_id)
        call: dict[str, Any] = {"id": call_id, "name": name, "args": args}
        await self.send({"toolCall": {"functionCalls": [call]}})
        try:
            return await asyncio.wait_for(future, self.server.tool_response_timeout_s)
        except TimeoutError:
            log.warning("no tool response for %s; replying without it", call_id)
            return None

    async def send_text_reply(self, turn: TurnRecord, text: str) -> None:
        """textreply: the reply as a text part that starts with an emotion header, as a
        text-output model asked for Pattern 2 answers."""
        assert self.state is not None
        header = json.dumps(await self.judge(turn))
        part = {"text": f"{header}\n{text}"}
        await self.send({"serverContent": {"modelTurn": {"parts": [part]}}})

    async def flood(self, turn: TurnRecord, *, text: bool) -> None:
        """A reply without end (audio or transcription), as fast as the socket takes
        it, until the client interrupts it or goes away."""
        chunk = encode_b64(bytes(OUTPUT_RATE * CHUNK_MS // 1000 * 2))
        audio = {"modelTurn": {"parts": [{"inlineData": {
            "mimeType": f"audio/pcm;rate={OUTPUT_RATE}", "data": chunk}}]}}  # fmt: skip
        words = {"outputTranscription": {"text": "flood " * 170}}  # about 1 kB
        frame = json.dumps({"serverContent": words if text else audio}).encode()
        for sent in itertools.count(1):
            await self.ws.send(frame)
            turn.reply_bytes += len(frame)
            if sent % 200 == 0:
                await self.server._notify()  # tests wait on how much has gone out
            await asyncio.sleep(0)

    async def stream_reply(self, turn: TurnRecord, text: str, faults: set[FaultKind]) -> bool:
        """Streams the reply; False if a fault cut it off halfway."""
        assert self.state is not None
        burst = FaultKind.BURST in faults
        # 30-70 ms of numpy per reply: off the event loop, which paces every connection.
        audio = await asyncio.to_thread(synthesize, text, self.state.voice)
        chunk_bytes = OUTPUT_RATE * CHUNK_MS // 1000 * 2
        if FaultKind.ODD_PCM in faults:
            chunk_bytes += 1  # every chunk ends mid-sample
        chunks = [audio[i : i + chunk_bytes] for i in range(0, len(audio), chunk_bytes)]
        rates = [OUTPUT_RATE] * len(chunks)
        if FaultKind.BAD_RATE in faults and len(chunks) > 2:
            first = np.frombuffer(chunks[0], dtype="<i2")[::3]  # 8 kHz, as labelled
            chunks[0], rates[0] = first.astype("<i2").tobytes(), 8_000
            rates[1] = 0
        words = text.split(" ")
        # Word w goes out with chunk w * len(chunks) // len(words): spread over the audio.
        word_at: dict[int, list[str]] = {}
        for w, word in enumerate(words):
            word_at.setdefault(w * len(chunks) // len(words), []).append(word)
        interval = CHUNK_MS / 1000 / self.server.speed
        start = time.monotonic()
        for i, chunk in enumerate(chunks):
            if i == len(chunks) // 2:
                if FaultKind.GOAWAY_REPLY in faults:
                    self.go_away(GOAWAY_REPLY_TIME_LEFT_S)
                if FaultKind.BAD_REPLY_FRAME in faults:
                    await self.send(BAD_REPLY_FRAME)
                if FaultKind.DROP_MID_REPLY in faults:
                    self.fail(None)
                    return False
                if FaultKind.STALL in faults:
                    return False
            await self.send(
                {
                    "serverContent": {
                        "modelTurn": {
                            "parts": [
                                {
                                    "inlineData": {
                                        "mimeType": f"audio/pcm;rate={rates[i]}",
                                        "data": encode_b64(chunk),
                                    }
                                }
                            ]
                        }
                    }
                }
            )
            turn.reply_bytes += len(chunk)
            if i in word_at:
                piece = " ".join(word_at[i])
                piece = piece if i == 0 else f" {piece}"
                await self.send({"serverContent": {"outputTranscription": {"text": piece}}})
            if burst:
                await asyncio.sleep(0)
            else:
                # Paced against the clock, so slow sends do not add up.
                delay = start + (i + 1) * interval - time.monotonic()
                await asyncio.sleep(max(0.0, delay))
        return True
