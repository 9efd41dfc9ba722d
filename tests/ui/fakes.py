"""A small controller that satisfies `ControllerProtocol`, for widget tests: it records
the intents it receives and emits the events a real controller would for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emodesk.conversation.api import (
    ControllerEvent,
    ConversationState,
    Intent,
    IntentRefused,
    SessionStarted,
    SettingsChanged,
    StateChanged,
)

S = ConversationState


class FakeController:
    def __init__(self, voice: str = "Puck", profile: str = "general") -> None:
        self._state = S.OFFLINE
        self._session_id: str | None = None
        self._subscribers: list[Callable[[ControllerEvent], None]] = []
        self.calls: list[tuple[str, Any]] = []
        self.voice = voice
        self.profile = profile
        self.consent = False
        self.hands_free = False
        self.export_result = True
        self.report: str | None = "EmoDesk session report\nEscalations: none\n"

    @property
    def state(self) -> ConversationState:
        return self._state

    @property
    def session_id(self) -> str | None:
        return self._session_id

    def subscribe(self, on_event: Callable[[ControllerEvent], None]) -> Callable[[], None]:
        self._subscribers.append(on_event)
        return lambda: self._subscribers.remove(on_event)

    def emit(self, event: ControllerEvent) -> None:
        for subscriber in list(self._subscribers):
            subscriber(event)

    def set_state(
        self, state: ConversationState, detail: str = "", retry_in_s: float | None = None
    ) -> None:
        previous, self._state = self._state, state
        self.emit(StateChanged(state, previous, detail, retry_in_s))

    def _settings_changed(self) -> None:
        self.emit(SettingsChanged(self.voice, self.profile, self.consent, self.hands_free))

    async def connect(self) -> bool:
        self.calls.append(("connect", None))
        self.set_state(S.CONNECTING)
        self._session_id = "fake-session"
        self.emit(SessionStarted("fake-session", self.voice, "fake-model", self.profile, True))
        self.set_state(S.READY)
        return True

    async def disconnect(self) -> bool:
        self.calls.append(("disconnect", None))
        self.set_state(S.OFFLINE)
        return True

    def push_to_talk_down(self) -> bool:
        self.calls.append(("ptt_down", None))
        if self._state is not S.READY:
            self.emit(IntentRefused(Intent.PUSH_TO_TALK_DOWN, "not connected"))
            return False
        self.set_state(S.LISTENING)
        return True

    def push_to_talk_up(self) -> bool:
        self.calls.append(("ptt_up", None))
        if self._state is S.LISTENING:
            self.set_state(S.WAITING)
            return True
        return False

    def set_hands_free(self, enabled: bool) -> bool:
        self.calls.append(("hands_free", enabled))
        self.hands_free = enabled
        self._settings_changed()
        return True

    async def send_text(self, text: str) -> bool:
        self.calls.append(("send_text", text))
        return True

    async def change_voice(self, voice: str) -> bool:
        self.calls.append(("change_voice", voice))
        self.voice = voice
        self._settings_changed()
        return True

    async def change_profile(self, profile: str) -> bool:
        self.calls.append(("change_profile", profile))
        self.profile = profile
        self._settings_changed()
        return True

    async def tune_hands_free(self, sensitivity: str, silence_ms: int) -> bool:
        self.calls.append(("tune_hands_free", (sensitivity, silence_ms)))
        return True

    async def set_consent(self, granted: bool) -> bool:
        self.calls.append(("set_consent", granted))
        self.consent = granted
        self._settings_changed()
        return True

    def session_report(self) -> str | None:
        self.calls.append(("session_report", None))
        return self.report

    async def export(self, path: str, fmt: str = "csv", session_id: str | None = None) -> bool:
        self.calls.append(("export", (path, fmt, session_id)))
        if not self.export_result:
            self.emit(IntentRefused(Intent.EXPORT, "export failed: disk full"))
        return self.export_result

    async def end_session(self) -> bool:
        self.calls.append(("end_session", None))
        return True
