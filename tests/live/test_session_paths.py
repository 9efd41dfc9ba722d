"""Paths of the Live session that matter and are easy to leave untested: hands-free
speech across a dropped link, the outage buffer filling up, and a server that never
offers a resumption handle. Real SDK over TLS against the emulator."""

from __future__ import annotations

import pytest

from emodesk.live.emulator.wire import normalize_keys
from emodesk.live.events import (
    AudioDropped,
    LinkState,
    LinkStateChanged,
    ResumptionHandle,
    TurnComplete,
)
from emodesk.live.session import LiveSession, RetryPolicy
from tests.support.emulator import (
    EventLog,
    frames,
    live_session,
    push_to_talk_turn,
    running_emulator,
    settings_for,
    tone,
)

pytestmark = pytest.mark.timeout(30)
SILENCE = bytes(640)


async def test_hands_free_speech_cut_by_a_drop_is_sent_again_and_answered() -> None:
    speech = tone(0.6, amplitude=0.4)
    async with (
        running_emulator(faults="drop@1") as server,
        live_session(server, push_to_talk=False, vad_silence_ms=300) as (s, log),
    ):
        for frame in frames(speech) + [SILENCE] * 20:  # 0.4 s of quiet ends the turn
            s.send_audio(frame)
        await log.wait_for(TurnComplete, within_s=10)
        assert server.connections[0].dropped  # hands-free: the audio is sent again, no turn
        (heard,) = server.connections[1].turns
        assert heard.completed and heard.audio_seconds >= 0.6  # the speech, whole
        assert not log.of(AudioDropped)


async def test_audio_past_the_outage_buffer_is_dropped_oldest_first_and_reported() -> None:
    async with running_emulator() as server:
        session = LiveSession(
            retry=RetryPolicy(max_attempts=3, base_delay_s=2.0, max_delay_s=2.0),
            buffer_limit_s=0.5,
            connect_timeout_s=5.0,
        )
        log = EventLog()
        session.set_listener(log)
        session.set_history(log.said)
        await session.start(settings_for(server))
        try:
            assert server.drop_open_connections() == 1
            await log.wait_for(LinkStateChanged, lambda e: e.state is LinkState.RECONNECTING)
            turn = tone(1.5)
            push_to_talk_turn(session, turn)  # spoken while the link is down (>= 1 s)
            await log.wait_for(TurnComplete, within_s=15)
            dropped = sum(d.seconds for d in log.of(AudioDropped))
            assert dropped == pytest.approx(1.0, abs=0.03)
            (heard,) = server.connections[1].turns
            assert bytes(heard.audio) == turn[-len(bytes(heard.audio)) :]  # the newest kept
            assert heard.audio_seconds == pytest.approx(0.5, abs=0.03)
        finally:
            await session.close()


async def test_a_server_that_offers_no_handle_is_rejoined_fresh_with_the_conversation() -> None:
    async with (
        running_emulator(resumable=False) as server,
        live_session(server) as (s, log),
    ):
        push_to_talk_turn(s, tone(0.3))
        await log.wait_for(TurnComplete)
        assert s.resume_handle is None and not log.of(ResumptionHandle)
        said_before = log.said()
        assert server.drop_open_connections() == 1
        await log.wait_for(LinkStateChanged, lambda e: e.state is LinkState.CONNECTED, count=2)
        fresh = server.connections[1]
        assert fresh.resumed_from is None
        assert "session_resumption" in fresh.setup and not fresh.setup["session_resumption"]
        await server.wait_until(lambda: len(fresh.received) >= 2)  # setup, then the seed
        seed = normalize_keys(fresh.received[1])["client_content"]
        assert [(t["role"], t["parts"][0]["text"]) for t in seed["turns"]] == list(said_before)
        push_to_talk_turn(s, tone(0.3))
        await log.wait_for(TurnComplete, count=2)
