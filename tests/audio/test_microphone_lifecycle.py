"""When the controller holds the microphone open: from the start of a connection to
going offline or failing, never while offline, and not closed between turns (opening a
device per press lost the start of what the user said)."""

from __future__ import annotations

import pytest

from emodesk.conversation.api import ConversationState
from emodesk.live.events import LinkState, LinkStateChanged, TurnComplete
from tests.conversation.fakes import FakeLive
from tests.support.controller_rig import make_rig, speak_turn

S = ConversationState
pytestmark = pytest.mark.timeout(10)


async def test_the_mic_is_held_from_connect_to_disconnect_across_turns_and_reconnects() -> None:
    r = make_rig()
    assert r.audio.mic_calls == [], "nothing opens the mic before a connection"
    await r.controller.connect()
    assert r.audio.prepared and r.audio.mic_calls == ["prepare"]
    for _ in range(2):
        speak_turn(r)
        r.live.emit(TurnComplete())
    assert await r.controller.change_voice("Kore")  # a reconnect with a new voice
    r.live.emit(LinkStateChanged(LinkState.RECONNECTING, attempt=1))
    r.live.emit(LinkStateChanged(LinkState.CONNECTED, resumed=True))
    assert r.controller.state is S.READY
    assert r.audio.mic_calls == ["prepare"], "turns and reconnects keep the mic as it is"
    assert await r.controller.disconnect()
    assert not r.audio.prepared and r.audio.mic_calls == ["prepare", "release"]
    await r.controller.close()
    assert r.audio.mic_calls == ["prepare", "release"]


async def test_a_failed_connection_releases_the_mic() -> None:
    r = make_rig(live=FakeLive(connect_error=ConnectionRefusedError("refused")))
    assert not await r.controller.connect()
    assert r.controller.state is S.ERROR
    assert not r.audio.prepared and r.audio.mic_calls == ["prepare", "release"]
    await r.controller.close()


async def test_a_link_that_gives_up_releases_the_mic_and_a_new_connect_holds_it_again() -> None:
    r = make_rig()
    await r.controller.connect()
    assert r.controller.push_to_talk_down()
    r.live.emit(LinkStateChanged(LinkState.FAILED, reason="retries exhausted"))
    assert r.controller.state is S.ERROR
    assert not r.audio.capturing, "the turn being captured was stopped"
    assert not r.audio.prepared
    await r.controller.connect()
    assert r.audio.prepared and r.audio.mic_calls == ["prepare", "release", "prepare"]
    await r.controller.close()
    assert not r.audio.prepared
