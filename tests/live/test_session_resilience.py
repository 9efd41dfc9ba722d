"""Reconnects, resumption and refusals, with the real SDK against the emulator's faults."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from emodesk.live.emulator.wire import normalize_keys
from emodesk.live.events import (
    AudioDropped,
    GoAway,
    LinkState,
    LinkStateChanged,
    SessionError,
    TurnComplete,
    TurnResent,
    TurnUndelivered,
)
from emodesk.live.session import LiveSession
from tests.support.emulator import (
    FAST_RETRY,
    EventLog,
    frames,
    live_session,
    push_to_talk_turn,
    running_emulator,
    settings_for,
    tone,
)


def _states(log, state):
    return [e for e in log.of(LinkStateChanged) if e.state is state]


async def test_go_away_mid_turn_resumes_with_all_audio_and_the_transcript() -> None:
    first, second = tone(0.3, hz=200), tone(0.5, hz=300)
    async with running_emulator(faults="goaway@2") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, first)
        await log.wait_for(TurnComplete)
        s.activity_start()  # the emulator says goAway when turn 2 starts
        half = len(frames(second)) // 2
        for frame in frames(second)[:half]:
            s.send_audio(frame)
        await log.wait_for(GoAway)
        for frame in frames(second)[half:]:  # the user keeps talking through the reconnect
            s.send_audio(frame)
        s.activity_end()
        await log.wait_for(TurnComplete, count=2)

        assert len(server.connections) == 2
        resumed = server.connections[1]
        assert resumed.resumed_from is not None
        assert resumed.setup["session_resumption"]["handle"] == resumed.resumed_from
        (turn,) = resumed.turns
        assert turn.number == 2 and bytes(turn.audio) == second  # nothing lost, nothing twice
        assert _states(log, LinkState.CONNECTED)[-1].resumed
        assert not log.of(AudioDropped)
        assert [role for role, _ in log.said()] == ["user", "model", "user", "model"]
        assert log.said()[2] == ("user", "[0.50 s of speech]")
        assert log.said()[3][1].startswith("Synthetic reply 2,")


async def test_dropped_connection_resumes_and_replays_the_unanswered_turn() -> None:
    pcm = tone(0.4)
    async with running_emulator(faults="drop@2") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, pcm)
        await log.wait_for(TurnComplete)
        push_to_talk_turn(s, pcm)  # the emulator cuts TCP when this turn ends
        await log.wait_for(TurnComplete, count=2)
        assert server.connections[0].dropped
        resumed = server.connections[1]
        assert resumed.resumed_from is not None
        assert bytes(resumed.turns[0].audio) == pcm and resumed.turns[0].number == 2
        reconnecting = _states(log, LinkState.RECONNECTING)
        assert reconnecting[0].attempt == 1 and reconnecting[0].delay_s > 0
        assert not log.of(AudioDropped)
        assert log.said()[-1][1].startswith("Synthetic reply 2,")


async def test_close_1011_is_retried_and_reported() -> None:
    async with running_emulator(faults="close1011@1") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        (error,) = log.of(SessionError)
        assert error.code == 1011 and error.retryable and not error.auth
        assert server.connections[0].close_code == 1011
        # Closed before any handle beyond the first: resumed from the setup handle.
        assert server.connections[1].resumed_from is not None


async def test_retries_are_bounded() -> None:
    async with running_emulator() as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        s.activity_start()
        for frame in frames(tone(0.2)):
            s.send_audio(frame)
        await server.wait_until(lambda: len(server.all_turns()) == 2)
        await server.stop()  # the server is gone for good: every try is refused
        failed = await log.wait_for(
            LinkStateChanged, lambda e: e.state is LinkState.FAILED, within_s=10
        )
        assert [e.attempt for e in _states(log, LinkState.RECONNECTING)] == [1, 2, 3]
        assert len(server.connections) == 1
        assert failed.reason
        # The turn never got through: its audio is reported, not silently lost.
        assert abs(sum(d.seconds for d in log.of(AudioDropped)) - 0.2) < 1e-9


async def test_a_turn_lost_again_after_its_resend_is_given_up_not_sent_forever() -> None:
    async with running_emulator(faults="drop@*") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        (undelivered,) = [await log.wait_for(TurnUndelivered, within_s=10)]
        assert "lost again" in undelivered.reason
        # Sent on the first link, sent again once on the second, not on the third.
        assert [len(c.turns) for c in server.connections] == [1, 1, 0]
        assert len(log.of(TurnResent)) == 1
        await log.wait_for(LinkStateChanged, lambda e: e.state is LinkState.CONNECTED, count=3)
        assert s.state is LinkState.CONNECTED  # the link itself is fine


async def test_drops_of_links_that_had_worked_do_not_add_up_to_giving_up() -> None:
    """Tries are counted in a row: a link that stayed up (here: any, stable_after_s=0)
    starts the count afresh, so more idle drops than `max_attempts` are all survived."""
    async with running_emulator() as server:
        session = LiveSession(retry=replace(FAST_RETRY, stable_after_s=0.0), connect_timeout_s=5)
        log = EventLog()
        session.set_listener(log)
        await session.start(settings_for(server))
        try:
            drops = FAST_RETRY.max_attempts + 2
            for done in range(1, drops + 1):
                assert server.drop_open_connections() == 1
                await log.wait_for(
                    LinkStateChanged, lambda e: e.state is LinkState.CONNECTED, count=done + 1
                )
            assert [e.attempt for e in _states(log, LinkState.RECONNECTING)] == [1] * drops
            assert session.state is LinkState.CONNECTED
        finally:
            await session.close()


async def test_invalid_key_is_reported_and_not_retried() -> None:
    async with (
        running_emulator(api_keys={"the-right-key"}) as server,
        live_session(server, api_key="a-wrong-key") as (s, log),
    ):
        assert s.state is LinkState.FAILED
        (error,) = log.of(SessionError)
        assert error.auth and not error.retryable and error.code == 1008
        assert not _states(log, LinkState.RECONNECTING)
        assert len(server.connections) == 1
        assert "a-wrong-key" not in error.message


async def test_malformed_server_message_is_reported_and_skipped() -> None:
    async with running_emulator(faults="malformed@1") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        # Three bad frames (not JSON, not an object, unknown fields): said once, skipped.
        (error,) = log.of(SessionError)
        assert error.retryable and "malformed" in error.message
        assert "Error:" not in error.message and "private" not in error.message
        assert len(server.connections) == 1


def _assert_seeded(connection: Any, said_before: list[tuple[str, str]]) -> None:
    """Seeded the SDK's way: history_config in the setup, then the transcript as
    client_content with turn_complete=True, before any realtime input."""
    assert connection.resumed_from is None
    wire = [normalize_keys(m) for m in connection.received]
    assert "setup" in wire[0]
    assert wire[0]["setup"]["history_config"] == {"initial_history_in_client_content": True}
    seed = wire[1]["client_content"]
    assert seed["turn_complete"] is True
    assert [(t["role"], t["parts"][0]["text"]) for t in seed["turns"]] == list(said_before)


async def test_a_voice_change_starts_fresh_seeded_with_the_transcript() -> None:
    """Not resumed: a resumed session can keep its old voice without saying so."""
    async with running_emulator() as server, live_session(server, voice="Puck") as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        assert "voice Puck" in log.said()[-1][1]
        said_before = log.said()
        await s.reconfigure(replace(settings_for(server), voice="Kore"))
        assert s.state is LinkState.CONNECTED
        assert len(server.connections) == 2
        fresh = server.connections[1]
        setup = fresh.setup
        voice = setup["generation_config"]["speech_config"]["voice_config"]
        assert voice["prebuilt_voice_config"]["voice_name"] == "Kore"
        _assert_seeded(fresh, said_before)
        assert not _states(log, LinkState.CONNECTED)[-1].resumed
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete, count=2)
        assert "voice Kore" in log.said()[-1][1]


async def test_a_tool_change_refused_on_resume_starts_fresh_seeded() -> None:
    async with (
        running_emulator(resume_accepts_changes=False) as server,
        live_session(server, emotion_tool=False) as (s, log),
    ):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        said_before = log.said()
        await s.reconfigure(settings_for(server, emotion_tool=True))
        assert s.state is LinkState.CONNECTED
        refused, fresh = server.connections[1], server.connections[2]
        assert refused.close_code == 1007 and refused.setup["session_resumption"]["handle"]
        _assert_seeded(fresh, said_before)
        assert not _states(log, LinkState.CONNECTED)[-1].resumed
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete, count=2)
        assert server.connections[2].turns[-1].tool_call_id is not None


async def test_without_consent_no_emotion_tool_or_rules_go_on_the_wire() -> None:
    rules = "Call report_user_emotion at the start of every reply."
    consented = {"emotion_tool": True, "system_instruction": f"Be kind. {rules}"}
    async with running_emulator() as server, live_session(server, **consented) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        assert server.connections[0].turns[0].tool_call_id is not None
        mark = len(server.received)
        # Consent withdrawn: the controller rebuilds the instruction without the rules.
        revoked = settings_for(server, emotion_tool=False, system_instruction="Be kind.")
        await s.reconfigure(revoked)
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete, count=2)
        after = json.dumps(server.received[mark:])
        assert "report_user_emotion" not in after and "tools" not in after
        assert "functionDeclarations" not in after and rules not in after
        assert server.connections[1].turns[0].tool_call_id is None
        assert "tool_response" not in after


async def test_no_consent_from_the_start() -> None:
    async with running_emulator() as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        wire = json.dumps(server.received)
        assert "report_user_emotion" not in wire and "tools" not in wire


async def test_a_fresh_setup_rejected_with_1007_fails_at_once(monkeypatch) -> None:
    from emodesk.live.emulator import server as emulator_server
    from emodesk.live.emulator.wire import WireError

    reason = "Invalid value at 'setup.generation_config' (voice Bogus)"

    async def reject(self, setup) -> None:
        raise WireError(reason)

    monkeypatch.setattr(emulator_server._Connection, "on_setup", reject)
    async with running_emulator() as server, live_session(server, voice="Bogus") as (s, log):
        assert s.state is LinkState.FAILED
        assert len(server.connections) == 1  # the same setup would fail the same way
        assert not _states(log, LinkState.RECONNECTING)
        (error,) = log.of(SessionError)
        assert error.code == 1007 and not error.retryable and not error.auth
        assert reason in error.message


async def test_a_key_the_header_cannot_carry_never_reaches_an_event_or_log(caplog) -> None:
    key = "my private key\nwith a line break"
    async with running_emulator() as server, live_session(server, api_key=key) as (s, log):
        assert s.state is LinkState.FAILED
        assert not server.connections and not _states(log, LinkState.RECONNECTING)
        (error,) = log.of(SessionError)
        assert error.auth and "cannot be sent" in error.message
    texts = [repr(e) for e in log.events] + [r.getMessage() for r in caplog.records]
    assert texts and not [t for t in texts if "my private key" in t]


async def test_unknown_errors_are_reported_without_the_key(monkeypatch, caplog) -> None:
    from google.genai.live import AsyncLive

    key = "AIza" + "Q" * 35 + "-not-shaped-tail"

    def leaky_connect(self, **kwargs):
        raise RuntimeError(f"the library quoted the request: x-goog-api-key={key}")

    monkeypatch.setattr(AsyncLive, "connect", leaky_connect)
    async with running_emulator() as server, live_session(server, api_key=key) as (_s, log):
        await log.wait_for(LinkStateChanged, lambda e: e.state is LinkState.FAILED)
    texts = [repr(e) for e in log.events] + [r.getMessage() for r in caplog.records]
    assert any("RuntimeError" in t for t in texts)
    assert not [t for t in texts if "QQQQ" in t or "not-shaped-tail" in t]


async def test_a_malformed_frame_is_logged_short(caplog) -> None:
    async with running_emulator(faults="malformed@1") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
    (record,) = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert "ValueError" in record.getMessage()
    assert len(record.getMessage()) < 250  # the frame itself is 5 kB of transcript
    assert "private" not in caplog.text  # no word of any of the three bad frames


async def test_an_error_in_our_own_handling_is_not_taken_for_a_bad_frame(monkeypatch) -> None:
    from google.genai.live import AsyncSession

    answer = AsyncSession.send_tool_response
    failures: list[str] = []

    async def fails_once(self, **kwargs):
        if not failures:
            failures.append("raised")
            raise ValueError("our own bug")
        await answer(self, **kwargs)

    monkeypatch.setattr(AsyncSession, "send_tool_response", fails_once)
    async with (
        running_emulator(tool_response_timeout_s=30) as server,
        live_session(server, emotion_tool=True) as (s, log),
    ):
        push_to_talk_turn(s, tone(0.2))
        lost = await log.wait_for(
            LinkStateChanged, lambda e: e.state is LinkState.RECONNECTING, within_s=5
        )
        assert "ValueError" in lost.reason and "our own bug" in lost.reason
        assert not [e for e in log.of(SessionError) if "malformed" in e.message]
        await log.wait_for(LinkStateChanged, lambda e: e.state is LinkState.CONNECTED, count=2)
        assert len(server.connections) == 2


async def test_go_away_mid_reply_lets_the_reply_finish_then_moves_on() -> None:
    from emodesk.live.events import AudioChunk, ResumptionHandle

    async with running_emulator(faults="goawayreply@1") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.3))
        going = await log.wait_for(GoAway)
        assert going.time_left_s == 50.0
        await log.wait_for(TurnComplete)
        first = server.connections[0].turns[0]
        assert first.completed and not first.interrupted
        assert sum(len(c.data) for c in log.of(AudioChunk)) == first.reply_bytes  # whole
        # Reconnected right after the turn, with the handle that includes it.
        await log.wait_for(LinkStateChanged, lambda e: e.state is LinkState.CONNECTED, count=2)
        assert len(server.connections) == 2
        newest = [h.handle for h in log.of(ResumptionHandle)][-2]  # before the new setup's
        assert server.connections[1].resumed_from == newest
        push_to_talk_turn(s, tone(0.3))
        await log.wait_for(TurnComplete, count=2)
        (second,) = server.connections[1].turns
        assert second.completed and second.number == 2
        assert log.said()[-1][1].startswith("Synthetic reply 2,")


async def test_a_manual_reconnect_resumes_the_conversation() -> None:
    async with running_emulator() as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        handle = s.resume_handle
        await s.close()
        await s.start(settings_for(server))
        assert s.state is LinkState.CONNECTED
        assert server.connections[1].resumed_from == handle
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete, count=2)
        assert log.said()[-1][1].startswith("Synthetic reply 2,")  # the same conversation


async def test_a_manual_reconnect_with_an_expired_handle_starts_fresh_and_seeded() -> None:
    async with running_emulator() as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        said_before = log.said()
        await s.close()
        server.sessions.clear()  # the handles have expired meanwhile
        await s.start(settings_for(server))
        assert s.state is LinkState.CONNECTED
        refused, fresh = server.connections[1], server.connections[2]
        assert refused.close_code == 1007 and fresh.resumed_from is None
        seed = normalize_keys(fresh.received[1])["client_content"]
        assert [(t["role"], t["parts"][0]["text"]) for t in seed["turns"]] == list(said_before)


async def test_forget_starts_a_new_conversation() -> None:
    async with running_emulator() as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        await s.close()
        s.forget()
        await s.start(settings_for(server))
        fresh = server.connections[1]
        assert fresh.resumed_from is None and len(fresh.received) == 1  # setup, no seed
        assert "history_config" not in normalize_keys(fresh.received[0])["setup"]


async def test_the_client_is_built_off_the_event_loop() -> None:
    import threading

    from emodesk.live.endpoint import make_client
    from emodesk.live.session import LiveSession
    from tests.support.emulator import EventLog

    threads: list[threading.Thread] = []

    def factory(settings):
        threads.append(threading.current_thread())
        return make_client(settings)

    async with running_emulator() as server:
        s, log = LiveSession(factory), EventLog()
        s.set_listener(log)
        await s.start(settings_for(server))
        assert s.state is LinkState.CONNECTED
        await s.close()
    assert threads and threads[0] is not threading.main_thread()
