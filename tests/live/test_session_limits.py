"""What a server can make the client keep or do is bounded (emodesk.live.limits), and
odd reply audio never raises: the real SDK over TLS against the emulator's faults."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from emodesk.live.emulator.synth import OUTPUT_RATE, synthesize
from emodesk.live.events import (
    AudioChunk,
    LinkState,
    LinkStateChanged,
    OutputTranscript,
    SessionError,
    TurnComplete,
    TurnLimitExceeded,
    TurnUndelivered,
)
from emodesk.live.limits import MAX_REPLY_AUDIO_S, MAX_TURN_TEXT_CHARS
from emodesk.live.session import LiveSession
from tests.support.emulator import (
    FAST_RETRY,
    EventLog,
    live_session,
    push_to_talk_turn,
    running_emulator,
    settings_for,
    tone,
)

pytestmark = pytest.mark.timeout(60)


async def test_a_reply_audio_flood_stops_at_the_limit_and_the_next_turn_works() -> None:
    async with running_emulator(faults="flood@1") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        exceeded = await log.wait_for(TurnLimitExceeded, within_s=30)
        assert f"{MAX_REPLY_AUDIO_S:.0f} s of audio" in exceeded.reason
        passed_on = sum(len(c.data) / 2 / c.rate for c in log.of(AudioChunk))
        assert MAX_REPLY_AUDIO_S - 1 < passed_on <= MAX_REPLY_AUDIO_S
        await server.wait_until(lambda: server.all_turns()[0].reply_bytes > 30_000_000, 30)
        # Everything after the limit was dropped unread, however much kept coming.
        assert sum(len(c.data) / 2 / c.rate for c in log.of(AudioChunk)) == passed_on
        mark = log.mark()
        push_to_talk_turn(s, tone(0.2))  # interrupts the flood; a normal reply follows
        await log.wait_for(TurnComplete)
        assert any(isinstance(e, AudioChunk) for e in log.since(mark))
        assert len(log.of(TurnLimitExceeded)) == 1


async def test_a_transcript_flood_stops_at_the_limit() -> None:
    async with running_emulator(faults="textflood@1") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        exceeded = await log.wait_for(TurnLimitExceeded, within_s=30)
        assert "characters" in exceeded.reason
        await server.wait_until(lambda: server.all_turns()[0].reply_bytes > 5_000_000, 30)
        chars = sum(len(t.text) for t in log.of(OutputTranscript))
        assert chars <= MAX_TURN_TEXT_CHARS


async def test_reply_audio_split_mid_sample_is_put_back_together() -> None:
    async with running_emulator(faults="oddpcm@1") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        chunks = log.of(AudioChunk)
        assert all(len(c.data) % 2 == 0 for c in chunks)
        sent = synthesize(server.all_turns()[0].reply_text, "Puck")
        assert b"".join(c.data for c in chunks) == sent[: len(sent) // 2 * 2]
        assert not log.of(SessionError)


async def test_a_chunk_at_an_unusable_rate_is_refused_alone_and_said_once() -> None:
    async with running_emulator(faults="badrate@1") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnComplete)
        rates = [c.rate for c in log.of(AudioChunk)]
        assert rates[0] == 8_000 and set(rates[1:]) == {OUTPUT_RATE}
        sent = synthesize(server.all_turns()[0].reply_text, "Puck")
        chunk = OUTPUT_RATE * 40 // 1000 * 2
        # All but the refused chunk (the second) reached the listener: none lost after it.
        assert sum(len(c.data) for c in log.of(AudioChunk)[1:]) == len(sent) - 2 * chunk
        (error,) = log.of(SessionError)
        assert "unusable rate (0 Hz)" in error.message


async def test_go_away_right_after_every_setup_ends_in_a_bounded_number_of_tries() -> None:
    async with (
        running_emulator(faults="goawaysetup@*") as server,
        live_session(server) as (_, log),
    ):
        failed = await log.wait_for(
            LinkStateChanged, lambda e: e.state is LinkState.FAILED, within_s=20
        )
        assert "going away" in failed.reason
        tries = [e for e in log.of(LinkStateChanged) if e.state is LinkState.RECONNECTING]
        assert [e.attempt for e in tries] == list(range(1, FAST_RETRY.max_attempts + 1))
        assert tries[0].delay_s == 0.0  # the first goAway is honoured at once...
        assert all(e.delay_s > 0 for e in tries[1:])  # ...then the same back-off as any loss
        assert len(server.connections) == FAST_RETRY.max_attempts + 1
        errors = [e for e in log.of(SessionError) if "Gave up" in e.message]
        assert errors and f"{FAST_RETRY.max_attempts} tries" in errors[0].message


async def test_go_away_at_every_turn_gives_the_turn_up_instead_of_looping() -> None:
    async with running_emulator(faults="goaway@*") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnUndelivered, within_s=20)
        assert len(server.connections) <= FAST_RETRY.max_attempts + 1


async def test_a_normal_close_says_1000_not_1011() -> None:
    async with running_emulator() as server:
        async with live_session(server) as (s, log):
            push_to_talk_turn(s, tone(0.2))
            await log.wait_for(TurnComplete)
        await server.wait_until(lambda: server.connections[0].client_close_code is not None)
        assert server.connections[0].client_close_code == 1000


async def test_a_reconnect_for_new_settings_closes_the_old_link_with_1000() -> None:
    from dataclasses import replace

    from tests.support.emulator import settings_for

    async with running_emulator() as server, live_session(server) as (s, _):
        await s.reconfigure(replace(settings_for(server), voice="Kore"))
        await server.wait_until(lambda: server.connections[0].client_close_code is not None)
        assert server.connections[0].client_close_code == 1000


def test_the_synthetic_reply_is_long_enough_for_the_chunk_faults() -> None:
    # The badrate fault needs at least three chunks of reply audio.
    assert np.frombuffer(synthesize("Synthetic reply 1.", "Puck"), np.int16).size > 3 * 960


async def test_an_unreadable_setup_answer_is_retried_boundedly_and_never_echoed(caplog) -> None:
    async with running_emulator(faults="badsetup@*") as server:
        session = LiveSession(retry=FAST_RETRY, connect_timeout_s=5.0)
        log = EventLog()
        session.set_listener(log)
        await session.start(settings_for(server))
        try:
            assert session.state is LinkState.FAILED
            (failed,) = [e for e in log.of(LinkStateChanged) if e.state is LinkState.FAILED]
            assert failed.reason == (
                f"gave up after {FAST_RETRY.max_attempts} tries in a row: "
                "the server's answer to the setup could not be read (ValueError)"
            )
            assert len(server.connections) == FAST_RETRY.max_attempts + 1
            shown = " ".join(str(e) for e in log.events) + caplog.text
            assert "private words" not in shown and len(shown) < 20_000
        finally:
            await session.close()


async def test_a_setup_never_answered_times_out_and_is_retried_boundedly() -> None:
    async with running_emulator(faults="nosetup@*") as server:
        session = LiveSession(retry=FAST_RETRY, connect_timeout_s=0.3)
        log = EventLog()
        session.set_listener(log)
        async with asyncio.timeout(20):
            await session.start(settings_for(server))
        try:
            (failed,) = [e for e in log.of(LinkStateChanged) if e.state is LinkState.FAILED]
            assert "did not answer in time" in failed.reason and "gave up" in failed.reason
            assert len(server.connections) == FAST_RETRY.max_attempts + 1
        finally:
            await session.close()


async def test_a_server_closing_with_1011_every_turn_is_retried_boundedly() -> None:
    async with running_emulator(faults="close1011@*") as server, live_session(server) as (s, log):
        push_to_talk_turn(s, tone(0.2))
        await log.wait_for(TurnUndelivered, within_s=20)  # sent, sent again once, given up
        assert [len(c.turns) for c in server.connections[:2]] == [1, 1]
        assert all(c.close_code == 1011 for c in server.connections[:2])
