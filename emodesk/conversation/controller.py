"""The conversation controller: one asyncio state machine that joins push-to-talk, the
audio port, the Live port, both emotion sources, the tracker, consent and the store.

It has no widgets: the GUI and `emodesk converse` drive the same object through the
intents of `ControllerProtocol` and show what its events say. Everything runs on the
loop's thread; feature extraction and sqlite writes go to one worker thread, in order,
so the loop never waits on them and readings reach the store in the order they happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from emodesk.conversation.api import (
    CONNECTED_STATES,
    ControllerEvent,
    ConversationState,
    Intent,
    IntentRefused,
    Notice,
    NoticeKind,
    ReadingAdded,
    ReplyRestarted,
    Role,
    SessionEnded,
    SessionStarted,
    SettingsChanged,
    StateChanged,
    TopicChanged,
    TranscriptLine,
    TrendChanged,
    TurnClosed,
    TurnLatency,
    TurnOutcome,
)
from emodesk.conversation.ports import AudioPort, LivePort
from emodesk.conversation.tools.emotion import emotion_report_tool
from emodesk.conversation.tools.registry import Tool, ToolRegistry
from emodesk.conversation.turn import EstimatorAudio, Phase, SpeechTrack, Turn, TurnKind
from emodesk.core.consent import CONSENT_VERSION, ConsentRecord
from emodesk.core.devices import DeviceSide
from emodesk.core.emotion import EmotionReading, Source
from emodesk.core.export import SessionMetadata, new_session_id, write_text_atomic
from emodesk.core.handoff import UsedPassage, handoff_json
from emodesk.core.parsing import EmotionParseError, ParsedEmotion
from emodesk.core.pcm import MIC_RATE, pcm_seconds
from emodesk.core.profiles import get_profile, system_instruction
from emodesk.core.report import session_report
from emodesk.core.settings import AppSettings
from emodesk.core.timeline import Timeline, TimelineEntry
from emodesk.core.tools import NEXT_TOPIC, SEARCH_KNOWLEDGE_BASE
from emodesk.core.tracker import EmotionTracker, TrackerVerdict
from emodesk.live.events import (
    AudioChunk,
    AudioDropped,
    EmotionReported,
    InputTranscript,
    Interrupted,
    LinkState,
    LinkStateChanged,
    LiveEvent,
    OutputTranscript,
    SessionError,
    TextReply,
    ToolCallCancelled,
    TurnComplete,
    TurnLimitExceeded,
    TurnResent,
    TurnUndelivered,
)
from emodesk.live.settings import LiveSettings

log = logging.getLogger(__name__)

# A turn owed a reply with no sign of one for this long (link up) fails, so nothing
# waits forever: well above a slow reply with a tool call (a few seconds).
TURN_STALL_LIMIT_S = 30.0
# How often an owed turn is checked for a stall.
_STALL_CHECK_S = 1.0

S = ConversationState
_IN_TURN_STATES = frozenset({S.LISTENING, S.WAITING, S.REPLYING})


class Estimator(Protocol):
    """The acoustic estimator as the controller uses it (emodesk.dsp.estimator)."""

    def estimate(
        self, pcm16: Any, rate: int, *, turn: int, t_start_s: float, t_end_s: float
    ) -> EmotionReading | None: ...


class SessionStorePort(Protocol):
    """The slice of `emodesk.store.SessionStore` the controller writes and reads."""

    def start_session(self, meta: SessionMetadata) -> None: ...

    def end_session(self, session_id: str) -> None: ...

    def record_consent(self, record: ConsentRecord) -> None: ...

    def set_session_consent(self, session_id: str, consent_version: str) -> None: ...

    def add_reading(self, session_id: str, entry: TimelineEntry) -> None: ...

    def add_transcript(self, session_id: str, turn: int, role: str, text: str) -> None: ...

    def export_session(self, session_id: str, path: str, fmt: str = "csv") -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Connection:
    """Where the Live session goes; not part of the user's settings file."""

    endpoint: str | None = None
    ca_file: str | None = None
    api_key: str = dataclasses.field(default="", repr=False)
    synthetic: bool = False  # the local emulator: replies are synthetic
    token_url: str | None = None  # ephemeral tokens from this service instead of a key


class Controller:
    """Implements `ControllerProtocol`. Construct on the loop's thread; `close()` at exit."""

    def __init__(
        self,
        *,
        live: LivePort,
        audio: AudioPort,
        store: SessionStorePort,
        estimator_factory: Callable[[], Estimator] | None,
        settings: AppSettings,
        connection: Connection | None = None,
        consent: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        executor: Executor | None = None,
        stall_limit_s: float = TURN_STALL_LIMIT_S,
        tools: Mapping[str, Tool] | None = None,
        speech_factory: Callable[[], SpeechTrack] | None = None,
    ) -> None:
        # Consent lives in `settings.consent` (a dated, versioned record); `consent` is
        # accepted only as a cross-check for callers that pass it as well.
        if consent is not None and consent != settings.consent_given:
            raise ValueError("consent disagrees with settings.consent; set the record instead")
        self._live = live
        self._audio = audio
        self._store = store
        self._estimator_factory = estimator_factory
        # Hands-free, a voice detector follows the microphone (on the worker thread) and
        # a turn's estimate is made from the speech it found; None: from all the audio.
        self._speech_factory = speech_factory
        self._settings = settings
        self._connection = connection or Connection()
        self._clock = clock
        self._stall_limit_s = stall_limit_s
        self._stall_timer: asyncio.TimerHandle | None = None
        self._own_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="emodesk-work"
        )
        self._subscribers: list[Callable[[ControllerEvent], None]] = []
        self._state = S.OFFLINE
        self._session_id: str | None = None
        self._session_t0 = 0.0
        self._turn_count = 0  # the number of the newest turn (consecutive per session)
        self._turn: Turn | None = None  # the newest turn: being spoken, answered or closed
        # An interrupted turn whose reply is still arriving: dropped until the server's
        # `interrupted` (or turnComplete) for it.
        self._tail_of: Turn | None = None
        # Hands-free speech not yet part of a turn (the server has not heard one yet).
        self._speech_ahead = EstimatorAudio()
        self._ptt_held = False
        self._hands_free_capture = False
        self._reconfiguring = False
        self._pending_reconfigure = ""  # why a reconfigure waits for the turn to end
        self._tracker = EmotionTracker()
        self._timeline = Timeline()
        self._trend: tuple[str, bool] | None = None
        self._estimator: Estimator | None = None
        # The settled (role, text) of closed turns: a fresh server session's seed.
        self._history: list[tuple[str, str]] = []
        # This (or the last) session for a handoff: (turn, role, text) of closed turns,
        # and the knowledge-base passages the model was given.
        self._said: list[tuple[int, str, str]] = []
        self._passages_used: list[UsedPassage] = []
        self._pending: set[asyncio.Future[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._mic_prepared = False  # the microphone is held open while not offline
        self._session_meta: SessionMetadata | None = None  # this or the last session
        live.set_listener(self._on_live_event)
        live.set_history(lambda: tuple(self._history))
        # Handlers for the profiles' functions (knowledge base, course material), given by
        # the composition root when it has what they need; the emotion report is ours.
        self._tool_handlers: Mapping[str, Tool] = dict(tools or {})
        self._tools = self._build_tools()
        self._pending_note: str | None = None  # for the model, with its next emotion report
        self._last_verdict: TrackerVerdict | None = None
        self._told_verdict: TrackerVerdict | None = None  # as the model last heard it
        self._cancelled_calls = 0
        live.set_tool_dispatcher(self._on_tool_call)
        audio.set_listeners(
            on_playback_started=self._on_playback_started,
            on_error=self._on_audio_error,
            on_info=self._on_audio_info,
        )

    # ------------------------------------------------------------------ public view

    @property
    def state(self) -> ConversationState:
        return self._state

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def consent(self) -> bool:
        """Emotion estimation may run: `settings.consent` is a current, granted record."""
        return self._settings.consent_given

    @property
    def _consent(self) -> bool:
        return self._settings.consent_given

    @property
    def cancelled_tool_calls(self) -> int:
        """Function calls the server withdrew (their handlers were stopped)."""
        return self._cancelled_calls

    @property
    def settings(self) -> AppSettings:
        return self._settings

    @property
    def timeline(self) -> Timeline:
        """This session's readings with the tracker's verdicts (a new one per session)."""
        return self._timeline

    def session_report(self) -> str | None:
        """The plain-text summary of this (or the last) session's timeline, as the
        wellness profile offers it; None before the first session."""
        if self._session_meta is None:
            return None
        profile = get_profile(self._settings.profile)
        return session_report(self._session_meta, self._timeline.entries(), profile)

    def subscribe(self, on_event: Callable[[ControllerEvent], None]) -> Callable[[], None]:
        self._subscribers.append(on_event)

        def unsubscribe() -> None:
            if on_event in self._subscribers:
                self._subscribers.remove(on_event)

        return unsubscribe

    async def wait_for_state(self, *states: ConversationState, limit_s: float) -> bool:
        """Wait until the state is one of `states`; False on timeout."""
        if self._state in states:
            return True
        reached = asyncio.get_running_loop().create_future()

        def on_event(event: ControllerEvent) -> None:
            if isinstance(event, StateChanged) and event.state in states and not reached.done():
                reached.set_result(None)

        unsubscribe = self.subscribe(on_event)
        try:
            await asyncio.wait_for(reached, limit_s)
            return True
        except TimeoutError:
            return False
        finally:
            unsubscribe()

    async def drain(self) -> None:
        """Wait for readings and store writes queued so far (before an export or exit)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # ------------------------------------------------------------------ connection intents

    async def connect(self) -> bool:
        if self._state not in (S.OFFLINE, S.ERROR):
            return self._refuse(Intent.CONNECT, f"already {self._state.value}")
        if self._session_id is None:
            self._begin_session()
        self._set_state(S.CONNECTING, "connecting to the Live service")
        if self._settings.hands_free:
            self._start_hands_free_capture()
        try:
            await self._live.start(self._live_settings())
        except Exception as exc:  # the session reports details as events too
            log.warning("connect failed: %s", exc)
            self._emit(Notice(NoticeKind.CONNECTION_FAILED, str(exc) or type(exc).__name__))
            self._set_state(S.ERROR, str(exc) or type(exc).__name__)
            return False
        # The session may have reported the link up already; if not, it is up now.
        if self._current() is S.CONNECTING:
            self._set_state(S.READY)
        return self._current() is S.READY

    async def disconnect(self) -> bool:
        if self._state is S.OFFLINE:
            return self._refuse(Intent.DISCONNECT, "not connected")
        self._release_capture()
        self._stop_hands_free_capture()
        self._audio.flush()
        self._fail_open_turn("you disconnected")
        self._set_state(S.OFFLINE, "disconnected")
        await self._live.close()
        return True

    async def end_session(self) -> bool:
        if self._session_id is None:
            return self._refuse(Intent.END_SESSION, "no session is open")
        if self._state is not S.OFFLINE:
            await self.disconnect()
        session_id = self._session_id
        self._submit(self._store.end_session, session_id)
        await self.drain()
        self._session_id = None
        self._emit(SessionEnded(session_id))
        return True

    async def close(self) -> None:
        """End the session if one is open and release the worker thread."""
        if self._session_id is not None:
            await self.end_session()
        for task in list(self._tasks):
            task.cancel()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
        await self.drain()
        if self._own_executor and isinstance(self._executor, ThreadPoolExecutor):
            self._executor.shutdown(wait=True)

    # ------------------------------------------------------------------ turn intents

    def push_to_talk_down(self) -> bool:
        if self._settings.hands_free:
            return self._refuse(Intent.PUSH_TO_TALK_DOWN, "hands-free mode is on")
        if self._ptt_held:
            return self._refuse(Intent.PUSH_TO_TALK_DOWN, "push-to-talk is already held")
        if self._state not in (S.READY, S.WAITING, S.REPLYING):
            return self._refuse(Intent.PUSH_TO_TALK_DOWN, self._not_ready_reason())
        if self._state in (S.WAITING, S.REPLYING):
            self._barge_in()
        self._ptt_held = True
        turn = self._open_turn(TurnKind.PUSH_TO_TALK)
        self._live.activity_start()
        self._audio.start_capture(self._on_frame)
        self._set_state(S.LISTENING, f"turn {turn.number}")
        return True

    def push_to_talk_up(self) -> bool:
        if not self._ptt_held:
            return self._refuse(Intent.PUSH_TO_TALK_UP, "push-to-talk is not held")
        self._ptt_held = False
        self._audio.stop_capture()
        # Always, even after a very short press: the server must see the turn end.
        self._live.activity_end()
        turn = self._turn
        if turn is not None and turn.released_at(self._clock()):
            self._estimate_turn(turn)
            self._watch_for_stall()
        if self._state is S.LISTENING:
            self._set_state(S.WAITING, f"turn {turn.number if turn else '?'} sent")
        return True

    def set_hands_free(self, enabled: bool) -> bool:
        if enabled == self._settings.hands_free:
            return self._refuse(Intent.SET_HANDS_FREE, f"hands-free is already {_on_off(enabled)}")
        if self._ptt_held:
            return self._refuse(Intent.SET_HANDS_FREE, "release push-to-talk first")
        self._settings = dataclasses.replace(self._settings, hands_free=enabled)
        self._settings_changed()
        if not enabled:
            self._stop_hands_free_capture()
        elif self._state not in (S.OFFLINE, S.ERROR):
            self._start_hands_free_capture()
        self._spawn(self._reconfigure_when_idle("hands-free " + _on_off(enabled)))
        return True

    async def send_text(self, text: str) -> bool:
        text = text.strip()
        if not text:
            return self._refuse(Intent.SEND_TEXT, "the text is empty")
        if self._ptt_held:
            return self._refuse(Intent.SEND_TEXT, "release push-to-talk first")
        if self._state not in (S.READY, S.WAITING, S.REPLYING):
            return self._refuse(Intent.SEND_TEXT, self._not_ready_reason())
        if self._state in (S.WAITING, S.REPLYING):
            self._barge_in()
        turn = self._open_turn(TurnKind.TEXT)
        turn.add_user_text(text, turn.started)
        self._emit(TranscriptLine(Role.USER, text, turn.number))
        self._set_state(S.WAITING, f"turn {turn.number} sent as text")
        self._watch_for_stall()
        await self._live.send_text(text)
        return True

    # ------------------------------------------------------------------ settings intents

    async def change_voice(self, voice: str) -> bool:
        voice = voice.strip()
        if not voice:
            return self._refuse(Intent.CHANGE_VOICE, "no voice given")
        if voice == self._settings.voice:
            return self._refuse(Intent.CHANGE_VOICE, f"the voice is already {voice}")
        if self._state in (S.CONNECTING, S.RECONNECTING):
            return self._refuse(Intent.CHANGE_VOICE, self._not_ready_reason())
        self._settings = dataclasses.replace(self._settings, voice=voice)
        self._settings_changed()
        await self._reconfigure_when_idle(f"voice {voice}")
        return True

    async def change_profile(self, profile: str) -> bool:
        try:
            get_profile(profile)
        except (KeyError, ValueError) as exc:
            return self._refuse(Intent.CHANGE_PROFILE, f"unknown profile {profile!r}: {exc}")
        if profile == self._settings.profile:
            return self._refuse(Intent.CHANGE_PROFILE, f"the profile is already {profile}")
        if self._state in (S.CONNECTING, S.RECONNECTING):
            return self._refuse(Intent.CHANGE_PROFILE, self._not_ready_reason())
        self._settings = dataclasses.replace(self._settings, profile=profile)
        self._settings_changed()
        self._advise_again()
        await self._reconfigure_when_idle(f"profile {profile}")
        return True

    def _advise_again(self) -> None:
        """The trend as it stands, in the current profile's words (its banner action)."""
        verdict = self._last_verdict
        if verdict is None or not self._consent:
            return
        advice = get_profile(self._settings.profile).advice_for(verdict)
        self._emit(TrendChanged(str(verdict.trend), verdict.escalate, advice))
        if verdict.escalate:
            self._emit(Notice(NoticeKind.ESCALATION, advice, action=advice))

    async def tune_hands_free(self, sensitivity: str, silence_ms: int) -> bool:
        """How the server detects the end of a hands-free turn. Push-to-talk does not use
        it: stored for the next setup. Hands-free: applied now (between turns), resuming
        the session as a voice change would not need to."""
        s = self._settings
        if (sensitivity, silence_ms) == (s.vad_sensitivity, s.vad_silence_ms):
            return self._refuse(Intent.TUNE_HANDS_FREE, "the hands-free settings are unchanged")
        self._settings = dataclasses.replace(
            s, vad_sensitivity=sensitivity, vad_silence_ms=silence_ms
        )
        if s.hands_free:
            why = "the hands-free settings"
            if self._state in (S.CONNECTING, S.RECONNECTING):
                self._pending_reconfigure = why  # applied once ready
            else:
                await self._reconfigure_when_idle(why)
        return True

    async def set_consent(self, granted: bool) -> bool:
        if granted == self._consent:
            return self._refuse(Intent.SET_CONSENT, f"consent is already {_given(granted)}")
        # Revoking takes effect at once for anything recorded; granting from the next turn.
        record = ConsentRecord.grant() if granted else ConsentRecord.decline()
        self._settings = dataclasses.replace(self._settings, consent=record)
        if not granted:
            self._pending_note = None  # nothing emotional reaches the model any more
        self._submit(self._store.record_consent, record)
        if granted and self._session_id is not None:
            self._submit(self._store.set_session_consent, self._session_id, record.version)
        self._settings_changed()
        await self._reconfigure_when_idle("consent " + _given(granted))
        return True

    async def export(self, path: str, fmt: str = "csv", session_id: str | None = None) -> bool:
        if fmt not in ("csv", "json", "handoff"):
            return self._refuse(Intent.EXPORT, f"unknown format {fmt!r} (csv, json or handoff)")
        last = self._session_meta.session_id if self._session_meta is not None else None
        target = session_id or last
        if target is None:
            return self._refuse(Intent.EXPORT, "no session to export")
        if fmt == "handoff" and target != last:
            return self._refuse(Intent.EXPORT, "a handoff is written for this session only")
        await self.drain()
        loop = asyncio.get_running_loop()
        try:
            if fmt == "handoff":
                assert self._session_meta is not None
                meta, said, used = self._session_meta, list(self._said), list(self._passages_used)
                entries = list(self._timeline.entries())

                # The history's redactor (emails, phones, cards, IBANs, addresses, the
                # user's names) first; handoff_json's own pass masks emails and phones.
                redactor = getattr(self._store, "redactor", None)

                def write_handoff() -> None:
                    lines = said
                    if redactor is not None:
                        lines = [(turn, role, redactor.redact(text)) for turn, role, text in said]
                    write_text_atomic(path, handoff_json(meta, lines, entries, used))

                await loop.run_in_executor(self._executor, write_handoff)
            else:
                await loop.run_in_executor(
                    self._executor, self._store.export_session, target, path, fmt
                )
        except Exception as exc:
            # The store's message is already one sentence naming the file and the reason.
            reason = str(exc) or f"Could not write {path}"
            self._emit(Notice(NoticeKind.STORAGE, reason))
            return self._refuse(Intent.EXPORT, reason)
        return True

    # ------------------------------------------------------------------ internals: session

    def _begin_session(self) -> None:
        session_id = new_session_id()
        self._session_id = session_id
        self._session_t0 = self._clock()
        self._turn_count = 0
        self._tracker = EmotionTracker()
        self._timeline = Timeline()
        self._trend = None
        self._last_verdict = self._told_verdict = self._pending_note = None
        self._history = []
        self._said = []
        self._passages_used = []
        self._turn = self._tail_of = None
        self._speech_ahead.clear()
        self._estimator = None
        # A new stored session is a new conversation on the server too: never resume
        # the previous one (after "end session" or "delete all data").
        self._live.forget()
        meta = SessionMetadata(
            session_id=session_id,
            started_utc=datetime.now(UTC),
            voice=self._settings.voice,
            model=self._settings.model,
            profile=self._settings.profile,
            consent_version=CONSENT_VERSION if self._consent else None,
            language=self._settings.language,
        )
        self._session_meta = meta
        self._submit(self._store.start_session, meta)
        self._emit(
            SessionStarted(
                session_id,
                self._settings.voice,
                self._settings.model,
                self._settings.profile,
                self._connection.synthetic,
            )
        )

    def _build_tools(self) -> ToolRegistry:
        """The profile's functions that the app can serve, and the emotion report only
        with consent."""
        profile = get_profile(self._settings.profile)
        tools = [self._tool_handlers[n] for n in profile.tools if n in self._tool_handlers]
        if self._consent:
            tools.insert(0, emotion_report_tool(self._on_model_report))
        return ToolRegistry(tools)

    async def _on_tool_call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """A function call of the reply: the turn it belongs to is being answered."""
        turn = self._reply_turn()
        if turn is not None:
            self._on_reply_content(turn)
        response = await self._tools.dispatch(name, args)
        self._after_tool(name, args, response, turn.number if turn is not None else 0)
        return response

    def _after_tool(
        self, name: str, args: dict[str, Any], response: dict[str, Any], turn: int
    ) -> None:
        """What a function's answer tells the app: the knowledge-base passages the
        model was given (for a handoff), the course topic the lesson moved to."""
        if name == SEARCH_KNOWLEDGE_BASE:
            query = str(args.get("query", ""))
            for passage in response.get("passages") or []:
                if isinstance(passage, dict):
                    self._passages_used.append(
                        UsedPassage(
                            str(passage.get("file", "")), str(passage.get("text", "")), query, turn
                        )
                    )
        elif name == NEXT_TOPIC and isinstance(response.get("title"), str):
            self._emit(TopicChanged(response["title"], str(response.get("file", ""))))

    def _on_model_report(self, report: ParsedEmotion) -> str | None:
        """The model's emotion report for the turn it answers; returns the note it gets
        back (a trend change not yet told, the profile's next step)."""
        turn = self._reply_turn()
        if turn is not None:
            self._on_model_reading(turn, report)
        if not self._consent:
            return None
        profile = get_profile(self._settings.profile)
        note, self._pending_note = self._pending_note, None
        if note is not None:
            self._told_verdict = self._last_verdict
        step = profile.next_step(report) if profile.next_step is not None else None
        return " ".join(part for part in (note, step) if part) or None

    def _live_settings(self) -> LiveSettings:
        self._tools = self._build_tools()
        profile = get_profile(self._settings.profile)
        conn = self._connection
        return LiveSettings(
            model=self._settings.model,
            voice=self._settings.voice,
            system_instruction=system_instruction(profile, self._settings.language, self._consent),
            tools=self._tools.declarations(),
            push_to_talk=not self._settings.hands_free,
            vad_start_sensitivity=_sensitivity(self._settings.vad_sensitivity),
            vad_end_sensitivity=_sensitivity(self._settings.vad_sensitivity),
            vad_silence_ms=self._settings.vad_silence_ms,
            endpoint=conn.endpoint,
            ca_file=conn.ca_file,
            api_key=conn.api_key,
            token_url=conn.token_url,
        )

    async def _reconfigure_when_idle(self, why: str) -> None:
        """Setup-time changes need a new connection; between turns only, so a reply in
        progress is not cut off. Offline, the next connect picks them up."""
        if self._state in (S.OFFLINE, S.ERROR):
            return
        if self._state in _IN_TURN_STATES or self._reconfiguring:
            self._pending_reconfigure = why
            return
        await self._reconfigure(why)

    async def _reconfigure(self, why: str) -> None:
        self._pending_reconfigure = ""
        self._reconfiguring = True
        self._set_state(S.CONNECTING, f"applying {why}")
        try:
            await self._live.reconfigure(self._live_settings())
        except Exception as exc:
            self._emit(Notice(NoticeKind.CONNECTION_FAILED, f"could not apply {why}: {exc}"))
            self._set_state(S.ERROR, f"could not apply {why}: {exc}")
            return
        finally:
            self._reconfiguring = False
        if self._state is S.CONNECTING:
            self._set_state(S.READY, f"{why} applied")
        if self._pending_reconfigure and self._state is S.READY:
            await self._reconfigure(self._pending_reconfigure)

    # ------------------------------------------------------------------ internals: events

    def _emit(self, event: ControllerEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:  # one broken view must not stop the conversation
                log.exception("event subscriber failed on %r", event)

    def _set_state(
        self, state: ConversationState, detail: str = "", retry_in_s: float | None = None
    ) -> None:
        if state is self._state:
            return
        previous, self._state = self._state, state
        self._hold_microphone(state not in (S.OFFLINE, S.ERROR))
        self._emit(StateChanged(state, previous, detail, retry_in_s))
        if state is S.READY and self._pending_reconfigure and not self._reconfiguring:
            self._spawn(self._reconfigure(self._pending_reconfigure))

    def _hold_microphone(self, hold: bool) -> None:
        """Open the microphone once a connection starts, so a press captures from its first
        moment; close it when offline or failed (privacy: never open while offline)."""
        if hold == self._mic_prepared:
            return
        self._mic_prepared = hold
        if hold:
            self._audio.prepare_capture()
        else:
            self._audio.release_capture()

    def _current(self) -> ConversationState:
        """The state now, for re-checks after an await (listeners may have changed it)."""
        return self._state

    def _refuse(self, intent: Intent, reason: str) -> bool:
        self._emit(IntentRefused(intent, reason))
        return False

    def _not_ready_reason(self) -> str:
        return {
            S.OFFLINE: "not connected",
            S.CONNECTING: "still connecting",
            S.RECONNECTING: "the connection is being restored",
            S.ERROR: "the connection failed; connect again",
            S.LISTENING: "a turn is being recorded",
        }.get(self._state, f"not possible while {self._state.value}")

    def _settings_changed(self) -> None:
        s = self._settings
        self._emit(SettingsChanged(s.voice, s.profile, self._consent, s.hands_free))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run blocking work (sqlite, feature extraction) on the worker thread, in order."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, fn, *args)
        self._pending.add(future)
        future.add_done_callback(self._on_work_done)
        return future

    def _on_work_done(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.warning("background work failed: %s", exc)
            self._emit(Notice(NoticeKind.STORAGE, f"the history could not be written: {exc}"))

    # ------------------------------------------------------------------ internals: audio

    def _start_hands_free_capture(self) -> None:
        if not self._hands_free_capture:
            self._hands_free_capture = True
            self._audio.set_hands_free(True)
            self._audio.start_capture(self._on_frame)

    def _stop_hands_free_capture(self) -> None:
        if self._hands_free_capture:
            self._hands_free_capture = False
            self._audio.stop_capture()
            self._audio.set_hands_free(False)

    def _on_frame(self, pcm: bytes) -> None:
        if self._hands_free_capture:
            self._on_hands_free_frame(pcm)
            return
        if not self._ptt_held:
            return
        self._live.send_audio(pcm)
        turn = self._turn
        if turn is not None and turn.consent and self._consent:
            turn.audio.keep(pcm)

    def _on_hands_free_frame(self, pcm: bytes) -> None:
        # The server's voice activity detection decides where turns are: a turn opens
        # when the server shows it heard one (its transcript or its reply), with the
        # speech kept since the last turn closed.
        if self._state in (S.OFFLINE, S.ERROR):
            return
        self._live.send_audio(pcm)
        if not self._consent:
            return
        turn = self._turn
        if turn is not None and turn.phase is Phase.CAPTURING and turn.consent:
            audio = turn.audio
        else:
            audio = self._speech_ahead
        audio.keep(pcm)
        self._detect_speech(audio, pcm)

    def _detect_speech(self, audio: EstimatorAudio, pcm: bytes) -> None:
        """Feed a hands-free frame to the voice detector that follows `audio`, on the
        worker thread (never the loop's: it runs the voice model), after any work queued
        before it; the turn's estimate, queued later, takes what it found."""
        if self._speech_factory is None:
            return
        if audio.speech is None:
            audio.speech = self._speech_factory()  # cheap: its detector is made on first feed
        with contextlib.suppress(RuntimeError):  # the executor is shut down: closing
            self._executor.submit(_feed_speech, audio.speech, pcm)

    def _barge_in(self) -> None:
        """The user speaks over the reply: silent at once, the turn closes interrupted
        with the text of what was heard. A reply already arriving ends with the server's
        `interrupted` (or its turnComplete), so its tail is dropped until then; a reply
        not yet started sends neither, and nothing may be dropped after it."""
        unheard_s = self._audio.flush()
        turn = self._turn
        if turn is None or turn.closed:
            return
        turn.interrupted(unheard_s)
        self._tail_of = turn if turn.phase is Phase.ANSWERING else None
        self._close(turn, TurnOutcome.INTERRUPTED)

    def _release_capture(self) -> None:
        if self._ptt_held:
            self.push_to_talk_up()

    def _on_playback_started(self, t_monotonic: float) -> None:
        turn = self._turn
        if turn is None or turn.released is None or turn.first_played is not None:
            return
        turn.first_played = t_monotonic
        # Audio played early (on the Live session's thread) can start before its event
        # is handled here; the latency is then sent when it is (`_on_audio_chunk`).
        if turn.first_audio is not None:
            self._send_latency(turn)

    def _on_audio_error(self, message: str, side: DeviceSide) -> None:
        if side == "output":
            # Replies go unheard, but the user's turn and the connection are unaffected.
            self._emit(
                Notice(
                    NoticeKind.SPEAKER_LOST,
                    f"The speaker stopped: {message}",
                    action="Choose another device",
                )
            )
            return
        self._emit(Notice(NoticeKind.MIC_LOST, message, action="Choose another device"))
        self._release_capture()

    def _on_audio_info(self, message: str, side: DeviceSide) -> None:
        # Information only: a turn being spoken goes on.
        self._emit(Notice(NoticeKind.AUDIO_DEVICE, f"{side}: {message}"))

    def _send_latency(self, turn: Turn) -> None:
        if turn.latency_sent or turn.released is None:
            return
        turn.latency_sent = True
        if turn.kind is TurnKind.HANDS_FREE:
            # Its "release" is the reply's first sign (the end of speech is the server's
            # to see): a figure measured from it would say ~0 ms and mean nothing.
            self._emit(TurnLatency(turn.number, None, None))
            return
        to_audio = None if turn.first_audio is None else turn.first_audio - turn.released
        to_played = None if turn.first_played is None else turn.first_played - turn.released
        self._emit(TurnLatency(turn.number, to_audio, to_played))

    # ------------------------------------------------------------------ internals: emotion

    def _estimate_turn(self, turn: Turn) -> None:
        if not (turn.consent and self._consent) or self._estimator_factory is None:
            turn.audio.clear()
            return
        if not turn.audio or turn.released is None:
            return
        speech = turn.audio.speech if turn.kind is TurnKind.HANDS_FREE else None
        pcm, trimmed = turn.audio.take()
        if self._estimator is None:
            self._estimator = self._estimator_factory()
        estimator = self._estimator
        t_start = max(0.0, turn.started - self._session_t0)
        t_end = max(t_start, turn.released - self._session_t0)
        if trimmed:  # the reading covers the audio it was made from
            t_start = max(t_start, t_end - pcm_seconds(len(pcm), MIC_RATE))
        number = turn.number

        def work() -> EmotionReading | _EstimateFailed | None:
            import numpy as np  # the controller's only numeric step, on the worker thread

            try:
                # Hands-free audio runs from the end of the last turn: the estimate hears
                # only the utterances the voice detector found in it, and none is made
                # when it found none (the server took noise, a beep or a cough for a turn).
                samples: Any = (
                    np.frombuffer(pcm, dtype=np.int16) if speech is None else speech.take()
                )
                if samples is None:
                    return None
                return estimator.estimate(
                    samples, MIC_RATE, turn=number, t_start_s=t_start, t_end_s=t_end
                )
            except Exception as exc:  # a bad estimate must not end the conversation
                log.exception("the acoustic estimate of turn %d failed", number)
                return _EstimateFailed(number, str(exc) or type(exc).__name__)

        future = self._submit(work)
        future.add_done_callback(self._on_acoustic_done)

    def _on_acoustic_done(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        reading = future.result()
        if isinstance(reading, _EstimateFailed):
            self._emit(
                Notice(
                    NoticeKind.ESTIMATION,
                    f"How turn {reading.turn} sounded could not be estimated: {reading.reason}",
                )
            )
        elif reading is not None:
            self._add_reading(reading)

    def _add_reading(self, reading: EmotionReading) -> None:
        if not self._consent or self._session_id is None:
            return  # revoked (or no session): nothing emotional is kept
        verdict = self._tracker.add(reading)
        trend = str(verdict.trend)
        entry = TimelineEntry(reading=reading, trend=verdict.trend, escalate=verdict.escalate)
        self._timeline.append(entry)
        added = ReadingAdded(
            turn=reading.turn,
            source=str(reading.source),
            emotion=str(reading.emotion),
            confidence=reading.confidence,
            energy_level=str(reading.energy_level),
            t_start_s=reading.t_start_s,
            t_end_s=reading.t_end_s,
            arousal=reading.arousal,
            valence=reading.valence,
            trend=trend,
            escalate=verdict.escalate,
        )
        # Shown once it is on disk (or failed to get there, with a STORAGE notice), so
        # whatever the user saw survives a crash.
        follow: list[ControllerEvent] = [added]
        # What the model has not heard yet: the change since the verdict it was last told
        # of (None: nothing to tell), given with its next emotion report, once.
        self._last_verdict = verdict
        self._pending_note = get_profile(self._settings.profile).context_note(
            verdict, self._told_verdict
        )
        if self._trend != (trend, verdict.escalate):
            escalated_now = verdict.escalate and (self._trend is None or not self._trend[1])
            self._trend = (trend, verdict.escalate)
            advice = get_profile(self._settings.profile).advice_for(verdict)
            follow.append(TrendChanged(trend, verdict.escalate, advice))
            if escalated_now:
                follow.append(Notice(NoticeKind.ESCALATION, advice, action=advice))
        stored = self._submit(self._store.add_reading, self._session_id, entry)

        def show(_: asyncio.Future[Any]) -> None:
            for event in follow:
                self._emit(event)

        stored.add_done_callback(show)

    def _on_model_reading(self, turn: Turn, report: ParsedEmotion) -> None:
        if not turn.consent or not self._consent:
            return
        t_start = max(0.0, turn.started - self._session_t0)
        end = turn.released if turn.released is not None else self._clock()
        t_end = max(t_start, end - self._session_t0)
        try:
            reading = report.to_reading(
                turn=turn.number, source=Source.MODEL, t_start_s=t_start, t_end_s=t_end
            )
        except (EmotionParseError, ValueError) as exc:
            log.warning("the model's emotion report for turn %d was unusable: %s", turn.number, exc)
            return
        self._add_reading(reading)

    # ------------------------------------------------------------------ internals: live

    def _on_live_event(self, event: LiveEvent) -> None:
        match event:
            case AudioChunk():
                self._on_audio_chunk(event)
            case OutputTranscript() | TextReply():
                self._on_reply_text(event.text)
            case InputTranscript():
                self._on_user_text(event.text)
            case EmotionReported():
                turn = self._reply_turn()
                if turn is not None:
                    self._on_reply_content(turn)
                    self._on_model_reading(turn, event.report)
            case ToolCallCancelled():
                # The session has stopped their handlers; nothing was answered.
                log.info("function calls withdrawn by the server: %s", ", ".join(event.ids))
                self._cancelled_calls += len(event.ids)
            case Interrupted():
                self._on_interrupted(event.unheard_s or 0.0)
            case TurnComplete():
                self._on_turn_complete()
            case TurnResent():
                if self._turn is not None and self._turn.open:
                    self._turn.last_progress = self._clock()
            case TurnUndelivered():
                self._fail_open_turn(event.reason)
                if self._state in (S.WAITING, S.REPLYING):
                    self._set_state(S.READY, "turn not delivered")
            case LinkStateChanged():
                self._on_link_state(event)
            case TurnLimitExceeded():
                self._audio.flush()  # a flood is not played out
                self._fail_open_turn(event.reason)
                if self._state in (S.WAITING, S.REPLYING):
                    self._set_state(S.READY, "the reply went over a limit")
            case SessionError():
                if event.auth:
                    self._emit(
                        Notice(NoticeKind.INVALID_KEY, event.message, action="Enter an API key")
                    )
                    self._fail_open_turn(event.message)
                    self._set_state(S.ERROR, event.message)
                elif event.retryable and event.code is None:
                    # Server data the session skipped (a bad frame, an unusable chunk).
                    self._emit(Notice(NoticeKind.SERVER_DATA, event.message))
            case AudioDropped():
                self._emit(
                    Notice(
                        NoticeKind.AUDIO_DROPPED,
                        f"{event.seconds:.1f} s of your speech could not be sent: {event.reason}",
                    )
                )
            case _:
                pass

    # -- which turn the server's words belong to -------------------------------------------

    def _reply_turn(self) -> Turn | None:
        """The turn that reply content (audio, reply text, a tool call) belongs to, or
        None when it is to be dropped: the tail of an interrupted reply, a reply while a
        push-to-talk turn is still being spoken (an earlier reply's last frames), or
        nothing owed. Hands-free, a reply is the server's sign it heard a turn."""
        if not self._takes_reply_content():
            return None
        turn = self._turn
        if turn is None or turn.closed:
            return self._open_hands_free_turn()
        return turn

    def _takes_reply_content(self) -> bool:
        """Whether `_reply_turn` keeps reply content (opening a hands-free turn for it);
        changes nothing, so the Live session's thread may ask too (`play_reply_audio_early`)."""
        if self._tail_of is not None or self._state not in CONNECTED_STATES:
            return False
        turn = self._turn
        if turn is None or turn.closed:
            return self._hands_free_capture
        return turn.phase is not Phase.CAPTURING or turn.kind is TurnKind.HANDS_FREE

    def play_reply_audio_early(self, chunk: AudioChunk) -> bool:
        """Called on the Live session's own thread as reply audio arrives
        (`LiveOnThread.set_early_playback`): plays `chunk` at once if the conversation
        takes it, so the audio does not wait for this loop's thread (the GUI's). The
        state read is written on this loop's thread; a chunk played on a stale answer is
        silenced when its event arrives (`_on_audio_chunk`)."""
        if not self._takes_reply_content():
            return False
        self._audio.play(chunk.data, chunk.rate)
        return True

    def silence_reply_early(self) -> float:
        """Called on the Live session's own thread when the server stops its reply
        (`LiveOnThread.set_early_silence`): silences it at once, so a barge-in does not wait
        for this loop's thread (the GUI's); returns the seconds dropped unheard. Touches
        only the audio engine, whose flush is thread-safe."""
        return self._audio.flush()

    def _open_hands_free_turn(self) -> Turn:
        # The turn began with the speech kept since the last one closed.
        turn = self._open_turn(TurnKind.HANDS_FREE, ahead_s=self._speech_ahead.seconds)
        turn.audio, self._speech_ahead = self._speech_ahead, EstimatorAudio()
        if self._state is S.READY:
            self._set_state(S.LISTENING, "speech heard")
        return turn

    def _open_turn(self, kind: TurnKind, ahead_s: float = 0.0) -> Turn:
        self._turn_count += 1
        consent = self._consent
        turn = Turn(self._turn_count, kind, self._clock() - ahead_s, consent)
        self._turn = turn
        return turn

    def _on_reply_content(self, turn: Turn) -> None:
        was_capturing = turn.phase is Phase.CAPTURING
        turn.reply_content(self._clock())
        if was_capturing:
            self._heard(turn)

    def _heard(self, turn: Turn) -> None:
        """Hands-free: the server answers, so it heard the end of the user's turn."""
        self._estimate_turn(turn)
        self._watch_for_stall()
        if self._state in (S.READY, S.LISTENING):
            self._set_state(S.WAITING, f"turn {turn.number} heard")

    def _on_audio_chunk(self, chunk: AudioChunk) -> None:
        turn = self._reply_turn()
        if turn is None:
            if chunk.played:  # played early on an answer this loop has since changed
                self._audio.flush()
            return
        was_capturing = turn.phase is Phase.CAPTURING
        first = turn.audio_received(len(chunk.data) / 2 / chunk.rate, self._clock())
        if was_capturing:
            self._heard(turn)
        if not chunk.played:
            self._audio.play(chunk.data, chunk.rate)
        elif first and turn.first_played is not None:  # it sounded before it came here
            self._send_latency(turn)
        if self._state is S.WAITING:
            self._set_state(S.REPLYING)

    def _on_reply_text(self, text: str) -> None:
        turn = self._reply_turn()
        if turn is None or not text:
            return
        was_capturing = turn.phase is Phase.CAPTURING
        turn.add_reply_text(text, self._clock())
        if was_capturing:
            self._heard(turn)
        self._emit(TranscriptLine(Role.MODEL, text, turn.number))

    def _on_user_text(self, text: str) -> None:
        if not text or self._state not in CONNECTED_STATES:
            return
        turn = self._turn
        if (turn is None or turn.closed) and self._hands_free_capture:
            turn = self._open_hands_free_turn()
        # A typed turn's words are known already; a closed turn's are settled.
        if turn is None or turn.closed or turn.kind is TurnKind.TEXT:
            return
        turn.add_user_text(text, self._clock())
        self._emit(TranscriptLine(Role.USER, text, turn.number))

    def _on_interrupted(self, silenced_s: float) -> None:
        """`silenced_s`: reply audio already dropped unheard on the Live session's thread
        (`silence_reply_early`)."""
        if self._tail_of is not None:  # the end of a reply the user pressed over
            self._tail_of = None
            return
        turn = self._turn
        if turn is None or turn.phase is not Phase.ANSWERING:
            return
        # Hands-free: the user spoke over the reply. Flushed again here: audio delivered
        # to this thread before the interruption (not played early) may have queued since.
        turn.interrupted(silenced_s + self._audio.flush())
        self._close(turn, TurnOutcome.INTERRUPTED)
        if self._state in (S.WAITING, S.REPLYING):
            self._set_state(S.READY, "reply interrupted")

    def _on_turn_complete(self) -> None:
        if self._tail_of is not None:  # the interrupted reply finished before it heard
            self._tail_of = None
            return
        turn = self._turn
        if turn is None or turn.closed:
            return
        if turn.phase is Phase.CAPTURING:
            if turn.kind is not TurnKind.HANDS_FREE:
                return  # an earlier reply's end, while this turn is still being spoken
            self._on_reply_content(turn)
        self._close(turn, TurnOutcome.COMPLETED)
        if self._state in (S.WAITING, S.REPLYING, S.LISTENING):
            self._set_state(S.READY, "reply complete")

    # -- closing a turn ---------------------------------------------------------------------

    def _close(self, turn: Turn, outcome: TurnOutcome, reason: str = "") -> None:
        """Every turn ends here: the settled texts are stored and shown as one."""
        if not turn.close(outcome, reason):
            return
        if outcome is TurnOutcome.FAILED and turn is self._turn:
            self._live.abandon_turn()  # a reconnect must not bring it back
        if turn is self._turn:
            self._speech_ahead.clear()
        user, model = turn.user_text, turn.model_text
        self._emit(TurnClosed(turn.number, outcome, turn.reason, user, model))
        for role, text in ((Role.USER, user), (Role.MODEL, model)):
            if text and self._session_id is not None:
                self._history.append((role.value, text))
                self._said.append((turn.number, role.value, text))
                self._submit(self._store.add_transcript, self._session_id, turn.number, role, text)
        if outcome is TurnOutcome.FAILED:
            self._emit(
                Notice(NoticeKind.TURN_FAILED, f"Turn {turn.number} was not answered: {reason}")
            )
        if turn.first_audio is None:
            self._send_latency(turn)  # no audio: report what is known now
        elif turn.first_played is None:
            self._spawn(self._latency_later(turn))

    def _fail_open_turn(self, reason: str) -> None:
        turn = self._turn
        if turn is not None and turn.open:
            self._close(turn, TurnOutcome.FAILED, reason)

    async def _latency_later(self, turn: Turn) -> None:
        # Playback may start just after the turn's last message; give it a moment.
        for _ in range(20):
            if turn.latency_sent:
                return
            await asyncio.sleep(0.05)
        self._send_latency(turn)

    def _watch_for_stall(self) -> None:
        """Check the owed turn every `_STALL_CHECK_S` until it closes."""
        if self._stall_timer is None:
            loop = asyncio.get_running_loop()
            self._stall_timer = loop.call_later(_STALL_CHECK_S, self._check_stall)

    def _check_stall(self) -> None:
        self._stall_timer = None
        turn = self._turn
        if turn is None or not turn.awaiting_reply:
            return
        # While reconnecting the session's bounded retries decide; the clock restarts
        # once the link is back.
        if self._state in (S.WAITING, S.REPLYING) and turn.stalled(
            self._clock(), self._stall_limit_s
        ):
            self._fail_open_turn(f"no reply for {self._stall_limit_s:.0f} s")
            self._set_state(S.READY, "the reply stalled")
            return
        self._watch_for_stall()

    def _state_after_reconnect(self) -> ConversationState:
        if self._ptt_held:
            return S.LISTENING
        turn = self._turn
        if turn is not None and turn.awaiting_reply:
            return S.WAITING
        return S.READY

    def _on_link_state(self, event: LinkStateChanged) -> None:
        if event.state is LinkState.CONNECTING:
            if self._state in (S.OFFLINE, S.CONNECTING):
                self._set_state(S.CONNECTING, "connecting to the Live service")
        elif event.state is LinkState.CONNECTED:
            was = self._state
            turn = self._turn
            if turn is not None and turn.open:
                turn.last_progress = self._clock()  # the stall clock starts again
            if was in (S.CONNECTING, S.RECONNECTING) and not self._reconfiguring:
                self._set_state(self._state_after_reconnect(), "connected")
            if was is S.RECONNECTING:
                self._emit(Notice(NoticeKind.RECONNECTED, "connection restored"))
        elif event.state is LinkState.RECONNECTING:
            if self._reconfiguring:
                return
            detail = f"attempt {event.attempt}, next in {event.delay_s:.1f} s"
            if event.reason:
                detail = f"{event.reason}; {detail}"
            if self._state is not S.RECONNECTING:
                self._on_link_lost()
                self._emit(Notice(NoticeKind.RECONNECTING, detail))
                self._set_state(S.RECONNECTING, detail, retry_in_s=event.delay_s)
            else:  # another try: the same state, a new wait for the countdown
                self._emit(StateChanged(S.RECONNECTING, S.RECONNECTING, detail, event.delay_s))
        elif event.state is LinkState.FAILED:
            reason = event.reason or "the connection failed"
            self._release_capture()
            self._fail_open_turn(f"the connection failed: {reason}")
            self._emit(Notice(NoticeKind.CONNECTION_FAILED, reason))
            self._set_state(S.ERROR, reason)
        elif (
            event.state is LinkState.CLOSED
            and self._state is not S.OFFLINE
            and not self._reconfiguring
        ):
            self._release_capture()
            self._fail_open_turn(f"the connection closed: {event.reason or 'closed'}")
            self._set_state(S.OFFLINE, event.reason or "closed")

    def _on_link_lost(self) -> None:
        """The session sends the unanswered turn again on the next link, and the server
        answers it anew: a reply cut by the drop is void (silenced, its text dropped)."""
        self._tail_of = None  # the link that carried it is gone
        turn = self._turn
        if turn is not None and turn.reply_lost(self._clock()):
            self._audio.flush()
            self._emit(ReplyRestarted(turn.number))


def _feed_speech(speech: SpeechTrack, pcm: bytes) -> None:
    try:
        speech.feed(pcm)
    except Exception:  # a detector failure must not end the conversation
        log.exception("the voice detector failed on a hands-free frame")


@dataclasses.dataclass(frozen=True, slots=True)
class _EstimateFailed:
    turn: int
    reason: str


def _sensitivity(value: str) -> str:
    return "low" if value == "low" else "high"


def _on_off(enabled: bool) -> str:
    return "on" if enabled else "off"


def _given(granted: bool) -> str:
    return "given" if granted else "revoked"
