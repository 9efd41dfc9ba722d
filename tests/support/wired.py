"""The controller wired to the real google-genai SDK over TLS to the emulator (the
audio ports and the store are in-memory doubles): `wired(...)` connects one, `speak`
holds push-to-talk over a loud turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from emodesk.conversation.api import ControllerEvent, TurnClosed
from emodesk.conversation.controller import Connection, Controller
from emodesk.conversation.tools.registry import Tool
from emodesk.core.consent import ConsentRecord
from emodesk.core.settings import AppSettings
from emodesk.live.emulator.server import EmulatorServer
from emodesk.live.session import LiveSession
from tests.conversation.fakes import FakeAudio, FakeEstimator, FakeStore
from tests.support.emulator import FAST_RETRY, TEST_KEY

LOUD, QUIET = 4000, 0  # frame sample values: speech and silence for the emulator's VAD


@dataclass
class Wired:
    controller: Controller
    server: EmulatorServer
    audio: FakeAudio
    store: FakeStore
    events: list[ControllerEvent] = field(default_factory=list)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def closed(self) -> dict[int, TurnClosed]:
        return {e.turn: e for e in self.of(TurnClosed)}

    async def until(self, condition: Callable[[], bool], within_s: float = 10.0) -> None:
        """Poll in-memory state against a deadline (the doubles have no events to await)."""
        async with asyncio.timeout(within_s):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    def stored(self) -> list[tuple[int, str, str]]:
        return [(turn, role, text) for _, turn, role, text in self.store.transcript]


@asynccontextmanager
async def wired(
    faults: str = "",
    *,
    speed: float = 20.0,
    consent: bool = False,
    hands_free: bool = False,
    profile: str = "general",
    tools: dict[str, Tool] | None = None,
    server: EmulatorServer | None = None,
) -> AsyncIterator[Wired]:
    server = server or EmulatorServer(speed=speed, faults=faults, record=True)
    await server.start()
    audio, store = FakeAudio(), FakeStore()
    settings = AppSettings(
        consent=ConsentRecord.grant() if consent else None,
        hands_free=hands_free,
        vad_silence_ms=300,
        profile=profile,
    )
    controller = Controller(
        live=LiveSession(retry=FAST_RETRY, connect_timeout_s=5.0),
        audio=audio,
        store=store,
        estimator_factory=FakeEstimator,
        settings=settings,
        connection=Connection(
            endpoint=server.url, ca_file=server.ca_file, api_key=TEST_KEY, synthetic=True
        ),
        stall_limit_s=5.0,
        tools=tools,
    )
    rig = Wired(controller, server, audio, store)
    controller.subscribe(rig.events.append)
    try:
        assert await controller.connect()
        yield rig
    finally:
        await controller.close()
        await server.stop()


def speak(rig: Wired, frames: int = 15) -> None:
    assert rig.controller.push_to_talk_down()
    rig.audio.feed(frames, value=LOUD)
    assert rig.controller.push_to_talk_up()
