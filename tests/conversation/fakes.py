"""Small in-memory doubles of the controller's collaborators, recording what they were asked."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from emodesk.core.consent import ConsentRecord
from emodesk.core.emotion import EmotionReading
from emodesk.core.export import SessionMetadata
from emodesk.core.settings import AppSettings as Settings  # noqa: F401  (re-exported)
from emodesk.core.timeline import TimelineEntry
from emodesk.live.events import LinkState, LinkStateChanged, LiveEvent
from emodesk.live.settings import LiveSettings


class FakeLive:
    """Records every call as a tuple in `wire`; `emit` plays the server's side."""

    def __init__(self, *, connect_error: Exception | None = None) -> None:
        self.wire: list[tuple[Any, ...]] = []
        self.settings: list[LiveSettings] = []
        self.listener: Callable[[LiveEvent], None] | None = None
        self.connect_error = connect_error
        self.forget_calls = 0
        self.abandoned = 0
        self.history: Callable[[], Any] = tuple

    def set_history(self, history: Callable[[], Any]) -> None:
        self.history = history

    def set_tool_dispatcher(self, dispatch: Callable[..., Any]) -> None:
        self.dispatch = dispatch

    async def call_tool(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """The model calls `name` (as the session would pass it on); its answer."""
        response: dict[str, Any] = await self.dispatch(name, args)
        return response

    def abandon_turn(self) -> None:
        self.abandoned += 1

    def set_listener(self, on_event: Callable[[LiveEvent], None]) -> None:
        self.listener = on_event

    def emit(self, event: LiveEvent) -> None:
        assert self.listener is not None
        self.listener(event)

    async def start(self, settings: LiveSettings) -> None:
        self.settings.append(settings)
        self.wire.append(("start", settings.voice))
        if self.connect_error is not None:
            raise self.connect_error
        self.emit(LinkStateChanged(LinkState.CONNECTED))

    async def reconfigure(self, settings: LiveSettings) -> None:
        self.settings.append(settings)
        self.wire.append(("reconfigure", settings.voice))
        self.emit(LinkStateChanged(LinkState.RECONNECTING, attempt=1))
        self.emit(LinkStateChanged(LinkState.CONNECTED, resumed=True))

    async def close(self) -> None:
        self.wire.append(("close",))
        self.emit(LinkStateChanged(LinkState.CLOSED))

    def forget(self) -> None:
        self.forget_calls += 1

    def send_audio(self, pcm: bytes) -> None:
        self.wire.append(("audio", len(pcm)))

    def activity_start(self) -> None:
        self.wire.append(("activity_start",))

    def activity_end(self) -> None:
        self.wire.append(("activity_end",))

    async def send_text(self, text: str) -> None:
        self.wire.append(("text", text))

    def kinds(self) -> list[str]:
        """The wire log without repeated audio entries, for compact assertions."""
        out: list[str] = []
        for item in self.wire:
            if not (item[0] == "audio" and out and out[-1] == "audio"):
                out.append(item[0])
        return out


class FakeAudio:
    def __init__(self) -> None:
        self.prepared = False  # the microphone is held open (prepare_capture)
        self.mic_calls: list[str] = []  # prepare / release, in order
        self.capturing = False
        self.on_frame: Callable[[bytes], None] | None = None
        self.played: list[tuple[int, int]] = []
        self.flushes = 0
        self.on_playback_started: Callable[[float], None] | None = None
        self.on_error: Callable[[str, str], None] | None = None
        self.on_info: Callable[[str, str], None] | None = None
        self.hands_free = False  # set_hands_free: echo cancelled, mic not held
        self.unheard_s = 0.0  # what flush() reports as dropped unheard

    def prepare_capture(self) -> None:
        self.prepared = True
        self.mic_calls.append("prepare")

    def release_capture(self) -> None:
        self.prepared = False
        self.mic_calls.append("release")

    def start_capture(self, on_frame: Callable[[bytes], None]) -> None:
        self.capturing = True
        self.on_frame = on_frame

    def stop_capture(self) -> None:
        self.capturing = False

    def set_hands_free(self, enabled: bool) -> None:
        self.hands_free = enabled

    def feed(self, frames: int = 1, frame_bytes: int = 640, value: int = 1000) -> None:
        """Deliver mic frames (20 ms at 16 kHz by default) if capture is open."""
        assert self.on_frame is not None
        sample = int(value).to_bytes(2, "little", signed=True)
        for _ in range(frames):
            if self.capturing:
                self.on_frame(sample * (frame_bytes // 2))

    def play(self, pcm: bytes, rate: int) -> None:
        self.played.append((len(pcm), rate))

    def flush(self) -> float:
        self.flushes += 1
        return self.unheard_s

    def set_listeners(
        self,
        on_playback_started: Callable[[float], None] | None = None,
        on_error: Callable[[str, str], None] | None = None,
        on_info: Callable[[str, str], None] | None = None,
    ) -> None:
        self.on_playback_started = on_playback_started
        self.on_error = on_error
        self.on_info = on_info


class FakeStore:
    def __init__(self, *, fail: bool = False) -> None:
        self.sessions: dict[str, SessionMetadata] = {}
        self.ended: list[str] = []
        self.consents: list[ConsentRecord] = []
        self.entries: dict[str, list[TimelineEntry]] = {}
        self.transcript: list[tuple[str, int, str, str]] = []
        self.exports: list[tuple[str, str, str]] = []
        self.fail = fail

    def _check(self) -> None:
        if self.fail:
            raise OSError("disk full")

    def start_session(self, meta: SessionMetadata) -> None:
        self.sessions[meta.session_id] = meta

    def end_session(self, session_id: str) -> None:
        self.ended.append(session_id)

    def record_consent(self, record: ConsentRecord) -> None:
        self.consents.append(record)

    def set_session_consent(self, session_id: str, consent_version: str) -> None:
        self._check()
        self.sessions[session_id] = dataclasses.replace(
            self.sessions[session_id], consent_version=consent_version
        )

    def add_reading(self, session_id: str, entry: TimelineEntry) -> None:
        self._check()
        self.entries.setdefault(session_id, []).append(entry)

    def add_transcript(self, session_id: str, turn: int, role: str, text: str) -> None:
        self.transcript.append((session_id, turn, role, text))

    def export_session(self, session_id: str, path: str, fmt: str = "csv") -> None:
        self.exports.append((session_id, path, fmt))


class FakeEstimator:
    """Answers every turn with one acoustic reading (or None when `silent`)."""

    def __init__(self, emotion: str = "angry", silent: bool = False) -> None:
        self.calls: list[tuple[int, int, float, float]] = []
        self.emotion = emotion
        self.silent = silent

    def estimate(
        self, pcm16: Any, rate: int, *, turn: int, t_start_s: float, t_end_s: float
    ) -> EmotionReading | None:
        self.calls.append((turn, len(pcm16), t_start_s, t_end_s))
        if self.silent:
            return None
        return EmotionReading(
            turn=turn,
            source="acoustic",  # type: ignore[arg-type]
            t_start_s=t_start_s,
            t_end_s=t_end_s,
            emotion=self.emotion,  # type: ignore[arg-type]
            confidence=0.8,
            energy_level="high",  # type: ignore[arg-type]
            arousal=0.6,
            valence=-0.5,
        )


class ManualClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
