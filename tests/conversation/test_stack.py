"""The one function that builds the conversation stack (used by the desktop app and by
`emodesk converse`), and the offline demo's emulator started from a connection plan."""

from __future__ import annotations

import pytest

from emodesk.conversation.api import ConversationState
from emodesk.conversation.connection import DEMO_KEY, choose_connection
from emodesk.conversation.controller import TURN_STALL_LIMIT_S
from emodesk.conversation.stack import build_controller, start_emulator
from emodesk.core.settings import AppSettings
from emodesk.live.session import RetryPolicy
from tests.conversation.fakes import FakeAudio, FakeStore

pytestmark = pytest.mark.timeout(60)


async def test_a_plan_without_a_key_connects_the_stack_to_its_own_emulator() -> None:
    plan = choose_connection(None, None, None, env={})  # no key, Google's endpoint
    assert plan.start_emulator
    connection, emulator = await start_emulator(plan, speed=50.0, record=True)
    try:
        assert connection.synthetic and connection.api_key == DEMO_KEY  # never a real key
        assert connection.endpoint is not None and str(emulator.port) in connection.endpoint
        store = FakeStore()
        controller = build_controller(
            audio=FakeAudio(), store=store, settings=AppSettings(voice="Kore"),
            connection=connection,
        )  # fmt: skip
        try:
            assert await controller.connect()
            assert controller.state is ConversationState.READY
            assert controller.session_id in store.sessions
            assert len(emulator.connections) == 1
        finally:
            await controller.close()
    finally:
        await emulator.stop()


def test_pace_speeds_up_the_back_off_and_the_stall_limit_together() -> None:
    plan = choose_connection("wss://127.0.0.1:9/", None, "key", env={})
    real_time = build_controller(
        audio=FakeAudio(), store=FakeStore(), settings=AppSettings(), connection=plan.connection
    )
    paced = build_controller(
        audio=FakeAudio(), store=FakeStore(), settings=AppSettings(),
        connection=plan.connection, pace=10.0,
    )  # fmt: skip
    default = RetryPolicy()
    assert real_time._live._retry == default  # type: ignore[attr-defined]
    assert real_time._stall_limit_s == TURN_STALL_LIMIT_S
    retry = paced._live._retry  # type: ignore[attr-defined]
    assert (retry.base_delay_s, retry.max_delay_s) == (
        default.base_delay_s / 10, default.max_delay_s / 10,
    )  # fmt: skip
    assert retry.max_attempts == default.max_attempts
    assert paced._stall_limit_s == TURN_STALL_LIMIT_S / 10
