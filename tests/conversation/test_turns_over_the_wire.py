"""Turns from key press to close, through the controller and the real google-genai SDK
over TLS to the emulator (audio ports are in-memory doubles): each turn is answered or
closed with a reason, the settled text is what is stored, and numbers are consecutive."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from emodesk.conversation.api import (
    ConversationState,
    ReplyRestarted,
    TranscriptLine,
    TurnOutcome,
)
from emodesk.conversation.tools.registry import Tool
from emodesk.live.emulator.server import EmulatorServer
from tests.support.wired import LOUD, QUIET, speak, wired

S = ConversationState
pytestmark = pytest.mark.timeout(30)


async def test_a_typed_turn_appears_once_and_is_stored_as_shown() -> None:
    async with wired() as rig:
        assert await rig.controller.send_text("what time is it")
        await rig.until(lambda: 1 in rig.closed())
        await rig.controller.drain()
        closed = rig.closed()[1]
        assert closed.outcome is TurnOutcome.COMPLETED
        assert closed.user_text == "what time is it"
        assert closed.model_text == rig.server.all_turns()[0].reply_text
        # The emulator echoes the text as an input transcription: not shown twice.
        user_lines = [e for e in rig.of(TranscriptLine) if e.role == "user"]
        assert [e.text for e in user_lines] == ["what time is it"]
        assert rig.stored() == [(1, "user", closed.user_text), (1, "model", closed.model_text)]


async def test_a_typed_turn_lost_with_the_link_is_sent_again_and_answered() -> None:
    async with wired("drop@1") as rig:
        assert await rig.controller.send_text("are you there")
        await rig.until(lambda: 1 in rig.closed())
        assert rig.closed()[1].outcome is TurnOutcome.COMPLETED
        assert rig.server.connections[0].dropped
        (again,) = rig.server.connections[1].turns
        assert again.text == "are you there" and again.completed


async def test_pressing_over_a_reply_closes_it_interrupted_and_the_next_reply_is_whole() -> None:
    async with wired(speed=2.0) as rig:
        speak(rig)
        await rig.until(lambda: rig.controller.state is S.REPLYING and len(rig.audio.played) > 3)
        speak(rig)  # barge in
        await rig.until(lambda: 2 in rig.closed())
        first, second = rig.closed()[1], rig.closed()[2]
        assert first.outcome is TurnOutcome.INTERRUPTED and second.outcome is TurnOutcome.COMPLETED
        full_first = rig.server.all_turns()[0].reply_text
        assert rig.server.all_turns()[0].interrupted
        # Only what was heard of the first reply, and nothing of it glued to the second.
        assert full_first.startswith(first.model_text) and first.model_text != full_first
        assert second.model_text == rig.server.all_turns()[1].reply_text
        assert second.model_text.startswith("Synthetic reply 2")
        await rig.controller.drain()
        assert [t for t, _, _ in rig.stored()] == [1, 1, 2, 2]  # in order, one row a side


async def test_only_the_played_part_of_an_interrupted_reply_is_kept() -> None:
    async with wired(speed=2.0) as rig:
        speak(rig)
        await rig.until(lambda: len([e for e in rig.of(TranscriptLine) if e.role == "model"]) > 2)
        rig.audio.unheard_s = 1e6  # the device had heard none of it
        speak(rig)
        await rig.until(lambda: 1 in rig.closed())
        assert rig.closed()[1].model_text == ""


async def test_a_reply_cut_by_a_drop_is_replaced_whole_not_appended_to() -> None:
    async with wired("dropreply@1") as rig:
        speak(rig)
        await rig.until(lambda: 1 in rig.closed())
        closed = rig.closed()[1]
        assert closed.outcome is TurnOutcome.COMPLETED
        assert rig.of(ReplyRestarted) == [ReplyRestarted(1)]
        assert closed.model_text == rig.server.connections[1].turns[0].reply_text
        assert rig.controller.state is S.READY


async def test_a_hands_free_utterance_split_by_a_pause_is_two_settled_turns() -> None:
    async with wired(hands_free=True, speed=2.0) as rig:
        rig.audio.feed(40, value=LOUD)  # 0.8 s of speech
        rig.audio.feed(20, value=QUIET)  # 0.4 s pause: the server ends the turn there
        await rig.until(lambda: rig.controller.state is S.REPLYING)
        rig.audio.feed(30, value=LOUD)  # the rest of the thought, over the reply
        rig.audio.feed(20, value=QUIET)
        await rig.until(lambda: 2 in rig.closed())
        first, second = rig.closed()[1], rig.closed()[2]
        assert first.outcome is TurnOutcome.INTERRUPTED
        assert second.outcome is TurnOutcome.COMPLETED
        assert first.user_text and second.user_text  # both halves settled, none left open
        await rig.controller.drain()
        assert rig.stored() == [
            (1, "user", first.user_text), (1, "model", first.model_text),
            (2, "user", second.user_text), (2, "model", second.model_text),
        ]  # fmt: skip
        assert "reply 1" not in second.model_text  # the interrupted reply's tail is not glued on
        assert rig.controller.state is S.READY


async def test_turn_numbers_are_consecutive_with_readings_for_each() -> None:
    async with wired("drop@2", consent=True) as rig:
        for n in (1, 2, 3):
            await rig.until(lambda: rig.controller.state is S.READY)
            speak(rig)
            await rig.until(lambda n=n: n in rig.closed())
        await rig.controller.drain()
        assert sorted(rig.closed()) == [1, 2, 3]
        entries = rig.store.entries[rig.controller.session_id or ""]
        assert sorted({e.reading.turn for e in entries}) == [1, 2, 3]
        assert sorted((e.reading.turn, str(e.reading.source)) for e in entries) == [
            (1, "acoustic"), (1, "model"), (2, "acoustic"), (2, "model"),
            (3, "acoustic"), (3, "model"),
        ]  # fmt: skip


async def test_the_model_hears_of_a_trend_change_once_in_its_emotion_answer() -> None:
    server = EmulatorServer(speed=20.0, record=True)
    server._estimate = lambda pcm, rate: {  # the emulator's model: angry every turn
        "emotion": "angry",
        "confidence": 0.9,
        "energy_level": "high",
    }
    async with wired(consent=True, profile="support", server=server) as rig:
        setup = server.connections[0].setup or {}
        assert "Adapt each reply to how the user sounds" in str(setup)
        for n in (1, 2, 3, 4, 5):
            await rig.until(lambda: rig.controller.state is S.READY)
            speak(rig)
            await rig.until(lambda n=n: n in rig.closed())
        answers = [t.tool_response["response"] for t in server.all_turns()]
    noted = [n for n, answer in enumerate(answers, 1) if "note" in answer]
    assert len(noted) == 1, answers
    note = answers[noted[0] - 1]["note"]
    assert "upset for several turns" in note and "offer a human agent" in note


async def test_without_consent_the_setup_has_no_emotion_tool_nor_rules() -> None:
    async with wired(consent=False, profile="support") as rig:
        speak(rig)
        await rig.until(lambda: 1 in rig.closed())
        setup = str(rig.server.connections[0].setup)
        assert "report_user_emotion" not in setup and "Adapt each reply" not in setup
        assert rig.server.all_turns()[0].tool_call_id is None


async def test_a_call_the_server_withdraws_stops_its_handler() -> None:
    from emodesk.core.tools import SEARCH_KNOWLEDGE_BASE, declaration

    started, stopped = asyncio.Event(), asyncio.Event()

    async def slow_search(args: Any) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.Event().wait()  # never answers on its own
        finally:
            stopped.set()
        return {}

    search = Tool(declaration(SEARCH_KNOWLEDGE_BASE), slow_search, limit_s=60.0)
    async with wired(profile="support", tools={SEARCH_KNOWLEDGE_BASE: search}) as rig:
        assert await rig.controller.send_text("please search for refund rules")
        await asyncio.wait_for(started.wait(), 10)
        assert await rig.controller.send_text("never mind")  # barge in: the call is withdrawn
        await asyncio.wait_for(stopped.wait(), 10)
        await rig.until(lambda: rig.controller.cancelled_tool_calls == 1)
        await rig.until(lambda: 2 in rig.closed())
        assert rig.closed()[1].outcome is TurnOutcome.INTERRUPTED
        assert rig.closed()[2].outcome is TurnOutcome.COMPLETED


async def test_an_emotion_header_in_a_text_reply_is_a_model_reading_not_text() -> None:
    async with wired("textreply@1", consent=True) as rig:
        assert await rig.controller.send_text("I am so worried about this")
        await rig.until(lambda: 1 in rig.closed())
        await rig.controller.drain()
        closed = rig.closed()[1]
        assert closed.model_text.startswith("Synthetic reply 1") and "{" not in closed.model_text
        entries = rig.store.entries[rig.controller.session_id or ""]
        # Two model readings for the turn: the function call's and the text header's.
        headers = [e.reading for e in entries if str(e.reading.source) == "model"]
        assert [str(r.emotion) for r in headers] == ["anxious", "anxious"]


async def test_a_hands_free_turn_reports_no_latency_it_cannot_measure() -> None:
    from emodesk.conversation.api import TurnLatency

    async with wired(hands_free=True, speed=2.0) as rig:
        rig.audio.feed(40, value=LOUD)
        rig.audio.feed(20, value=QUIET)
        await rig.until(lambda: 1 in rig.closed())
        await rig.until(lambda: bool(rig.of(TurnLatency)))
        assert rig.of(TurnLatency) == [TurnLatency(1, None, None)]
