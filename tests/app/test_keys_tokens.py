"""*Test key* and the connection choice with ephemeral tokens, over the real SDK against
the emulator and the token service on loopback (the rig of tests/live/test_tokens.py)."""

from __future__ import annotations

import pytest

from emodesk.app.keys import ApiKeys
from emodesk.conversation.connection import ConnectionChoiceError, choose_connection
from tests.live.test_tokens import SECRET, source, token_rig


async def _no_switch(key: str) -> None:
    raise AssertionError("testing a key never switches to it")


async def test_test_key_recognises_a_pasted_token_and_tests_it_as_one() -> None:
    async with token_rig() as rig:
        keys = ApiKeys(use_key=_no_switch, endpoint=rig.emulator.url, ca_file=rig.emulator.ca_file)
        token = (await source(rig).fetch()).name
        ok, message = await keys.test(f"  {token} ")
        assert ok and message.startswith("the token works")
        ok, message = await keys.test(token)
        assert not ok and message.startswith("the token was refused")
        assert "key" not in message  # not "the key was not accepted"


async def test_test_key_with_a_token_url_tests_the_service(monkeypatch) -> None:
    monkeypatch.setenv("EMODESK_TOKEN_SECRET", SECRET)
    async with token_rig() as rig:
        keys = ApiKeys(
            use_key=_no_switch,
            endpoint=rig.emulator.url,
            ca_file=rig.emulator.ca_file,
            token_url=rig.token_url,
        )
        ok, message = await keys.test("")
        assert ok and "token service works" in message
        assert len(rig.emulator.minted) == 1


def test_a_token_url_connects_without_any_key() -> None:
    plan = choose_connection(
        None, None, "AIzaSyAKeyThatMustNotBeUsed0123456789", token_url=" https://t.example/v1 "
    )
    assert not plan.start_emulator
    assert plan.connection.token_url == "https://t.example/v1"
    assert plan.connection.api_key == "" and plan.connection.endpoint is None
    with pytest.raises(ConnectionChoiceError, match="https://"):
        choose_connection(None, None, None, token_url="http://t.example/v1")
