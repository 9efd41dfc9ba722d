"""Test helpers for the Live layer: an in-process emulator and an event recorder that
waits on conditions (bounded), never on sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from emodesk.conversation.tools.emotion import emotion_report_tool
from emodesk.conversation.tools.registry import ToolRegistry
from emodesk.core.emotion_tool import REPORT_EMOTION_DECLARATION
from emodesk.live.emulator.server import EmulatorServer
from emodesk.live.events import (
    InputTranscript,
    LiveEvent,
    OutputTranscript,
    TextReply,
    TurnComplete,
)
from emodesk.live.session import LiveSession, RetryPolicy
from emodesk.live.settings import LiveSettings

E = TypeVar("E")


@dataclass(frozen=True)
class ToolAnswered:
    """Recorded by the test dispatcher: a function call and what it was answered."""

    name: str
    args: dict[str, Any]
    response: dict[str, Any]


TEST_KEY = "test-key-not-secret"
FRAME_BYTES = 640  # 20 ms at 16 kHz


class EventLog:
    """Collects a session's events; `wait_for` returns once a matching one has arrived."""

    def __init__(self) -> None:
        self.events: list[LiveEvent] = []
        self._changed = asyncio.Condition()

    def __call__(self, event: LiveEvent) -> None:
        self.events.append(event)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(
        self,
        kind: type[E],
        where: Callable[[E], bool] = lambda e: True,
        *,
        count: int = 1,
        within_s: float = 5.0,
    ) -> E:
        def found() -> bool:
            return len([e for e in self.of(kind) if where(e)]) >= count

        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(found)
        return [e for e in self.of(kind) if where(e)][count - 1]

    def said(self) -> tuple[tuple[str, str], ...]:
        """The completed turns as (role, text), read off the events the way a consumer
        of the session (the controller) keeps them; the session's history source."""
        said: list[tuple[str, str]] = []
        user: list[str] = []
        model: list[str] = []
        for event in self.events:
            if isinstance(event, InputTranscript):
                user.append(event.text)
            elif isinstance(event, OutputTranscript | TextReply):
                model.append(event.text)
            elif isinstance(event, TurnComplete):
                said += [(r, "".join(t).strip()) for r, t in (("user", user), ("model", model))]
                said = [(r, t) for r, t in said if t]
                user, model = [], []
        return tuple(said)

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int) -> list[LiveEvent]:
        return self.events[mark:]


def tone(seconds: float, amplitude: float = 0.3, hz: float = 220.0, rate: int = 16_000) -> bytes:
    """A plain sine as stand-in speech (PCM16 mono)."""
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * amplitude * 32767).astype("<i2").tobytes()


def frames(pcm: bytes, size: int = FRAME_BYTES) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def settings_for(server: EmulatorServer, **changes: Any) -> LiveSettings:
    base: dict[str, Any] = {
        "endpoint": server.url,
        "ca_file": server.ca_file,
        "api_key": TEST_KEY,
        "system_instruction": "You are a helpful test assistant.",
    }
    if changes.pop("emotion_tool", False):
        changes["tools"] = (*changes.get("tools", ()), REPORT_EMOTION_DECLARATION)
    base.update(changes)
    return LiveSettings(**base)


FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.02, max_delay_s=0.1)


@asynccontextmanager
async def running_emulator(**options: Any) -> AsyncIterator[EmulatorServer]:
    options.setdefault("speed", 50.0)  # replies stream 50x faster than real time
    options.setdefault("record", True)  # tests read the wire log (`received`)
    server = EmulatorServer(**options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def live_session(
    server: EmulatorServer, **settings_changes: Any
) -> AsyncIterator[tuple[LiveSession, EventLog]]:
    session = LiveSession(retry=FAST_RETRY, connect_timeout_s=5.0)
    log = EventLog()
    session.set_listener(log)
    session.set_history(log.said)
    session.set_tool_dispatcher(answering_into(log))
    async with asyncio.timeout(10):
        await session.start(settings_for(server, **settings_changes))
    try:
        yield session, log
    finally:
        async with asyncio.timeout(10):
            await session.close()


def answering_into(log: EventLog) -> Any:
    """A dispatcher that answers as the app's registry would (the emotion report, with no
    note) and logs each call as a `ToolAnswered` event."""
    registry = ToolRegistry([emotion_report_tool(lambda report: None)])

    async def dispatch(name: str, args: dict[str, Any]) -> dict[str, Any]:
        response = await registry.dispatch(name, args)
        log(ToolAnswered(name, args, response))  # type: ignore[arg-type]
        return response

    return dispatch


def push_to_talk_turn(session: LiveSession, pcm: bytes) -> None:
    session.activity_start()
    for frame in frames(pcm):
        session.send_audio(frame)
    session.activity_end()
