"""The controller on in-memory doubles of its ports, as the controller and microphone
tests drive it: a rig, and a spoken push-to-talk turn."""

from __future__ import annotations

import dataclasses
from typing import Any

from emodesk.conversation.api import ControllerEvent, ConversationState, IntentRefused, StateChanged
from emodesk.conversation.controller import Connection, Controller
from emodesk.core.consent import ConsentRecord
from tests.conversation.fakes import (
    FakeAudio,
    FakeEstimator,
    FakeLive,
    FakeStore,
    ManualClock,
    Settings,
)


@dataclasses.dataclass
class Rig:
    controller: Controller
    live: FakeLive
    audio: FakeAudio
    store: FakeStore
    estimator: FakeEstimator
    clock: ManualClock
    events: list[ControllerEvent]

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def states(self) -> list[ConversationState]:
        return [e.state for e in self.of(StateChanged)]

    def refused(self) -> list[tuple[str, str]]:
        return [(e.intent, e.reason) for e in self.of(IntentRefused)]


def make_rig(
    *,
    consent: bool = False,
    profile: str = "general",
    live: FakeLive | None = None,
    store: FakeStore | None = None,
) -> Rig:
    live = live or FakeLive()
    audio = FakeAudio()
    store = store or FakeStore()
    estimator = FakeEstimator()
    clock = ManualClock()
    controller = Controller(
        live=live,
        audio=audio,
        store=store,
        estimator_factory=lambda: estimator,
        settings=Settings(profile=profile, consent=ConsentRecord.grant() if consent else None),
        connection=Connection(endpoint="wss://127.0.0.1:1", synthetic=True),
        clock=clock,
    )
    events: list[ControllerEvent] = []
    controller.subscribe(events.append)
    return Rig(controller, live, audio, store, estimator, clock, events)


def speak_turn(r: Rig, frames: int = 10, seconds: float = 0.2) -> None:
    assert r.controller.push_to_talk_down()
    r.audio.feed(frames)
    r.clock.advance(seconds)
    assert r.controller.push_to_talk_up()
