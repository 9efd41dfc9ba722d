"""`emodesk converse` presses push-to-talk for each utterance: a press that meets a
link being restored (a goAway that lands between "ready" and the press) waits for the
link and presses again; a press the session cannot take ends the conversation."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest

from emodesk.commands import converse
from emodesk.commands.converse import ConverseError, EventLog, press_when_ready
from emodesk.conversation.api import ConversationState as S
from emodesk.live.events import LinkState, LinkStateChanged
from tests.support.controller_rig import Rig, make_rig

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = make_rig()
    assert await r.controller.connect()
    yield r
    await r.controller.close()


class LinkLostAtThePress:
    """The controller, except that the link goes away just as the first press is made,
    in the same loop turn, and comes back `back_after_s` later (or never)."""

    def __init__(self, rig: Rig, back_after_s: float | None) -> None:
        self._rig = rig
        self._back_after_s = back_after_s
        self.presses = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rig.controller, name)

    def push_to_talk_down(self) -> bool:
        self.presses += 1
        if self.presses == 1:
            live = self._rig.live
            live.emit(LinkStateChanged(LinkState.RECONNECTING, attempt=1, reason="goAway"))
            if self._back_after_s is not None:
                asyncio.get_running_loop().call_later(
                    self._back_after_s,
                    live.emit,
                    LinkStateChanged(LinkState.CONNECTED, resumed=True),
                )
        return self._rig.controller.push_to_talk_down()


def event_log(rig: Rig) -> EventLog:
    log = EventLog(io.StringIO())
    rig.controller.subscribe(log.on_event)
    return log


async def test_a_press_refused_while_the_link_is_restored_is_made_again_once_it_is(
    rig: Rig,
) -> None:
    log = event_log(rig)
    controller = LinkLostAtThePress(rig, back_after_s=0.05)
    await press_when_ready(controller, log)
    assert controller.presses == 2
    assert log.refusals == ["push_to_talk_down: the connection is being restored"]
    assert rig.controller.state is S.LISTENING
    assert rig.live.kinds()[-1] == "activity_start"  # the turn really opened, once
    assert rig.live.kinds().count("activity_start") == 1


async def test_a_link_that_is_not_restored_in_time_ends_the_conversation(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(converse, "REPLY_LIMIT_S", 0.2)
    log = event_log(rig)
    controller = LinkLostAtThePress(rig, back_after_s=None)
    with pytest.raises(ConverseError, match="still reconnecting after 0 s"):
        await press_when_ready(controller, log)
    assert rig.live.kinds().count("activity_start") == 0


async def test_a_link_that_fails_while_waiting_ends_with_its_reason(rig: Rig) -> None:
    log = event_log(rig)
    controller = LinkLostAtThePress(rig, back_after_s=None)
    asyncio.get_running_loop().call_later(
        0.05,
        rig.live.emit,
        LinkStateChanged(LinkState.FAILED, reason="the API key was rejected"),
    )
    with pytest.raises(ConverseError, match="rejected"):
        await press_when_ready(controller, log)


async def test_a_press_refused_for_another_reason_is_not_retried(rig: Rig) -> None:
    log = event_log(rig)
    assert rig.controller.set_hands_free(True)  # ready, but turns are the server's to open
    await asyncio.sleep(0)
    assert rig.controller.state is S.READY
    with pytest.raises(ConverseError, match=r"push-to-talk refused: .*hands-free mode is on"):
        await press_when_ready(rig.controller, log)
