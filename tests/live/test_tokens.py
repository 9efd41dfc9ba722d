"""Ephemeral tokens end to end, with the real SDK on loopback: the token service minting
on the emulator's REST side (`client.aio.auth_tokens.create`), Live sessions connecting
with its tokens on the v1alpha constrained endpoint, refused tokens replaced, plain keys
refused under `require_tokens`, and the key never on the client's side."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from emodesk.live.asgi import AsgiServer
from emodesk.live.emulator.rest import RestSide
from emodesk.live.emulator.server import EmulatorServer
from emodesk.live.emulator.tokens import KEYS_REFUSED, TOKEN_EXPIRED, TOKEN_USED_UP
from emodesk.live.events import LinkState, LinkStateChanged, SessionError, TurnComplete
from emodesk.live.session import LiveSession
from emodesk.live.tokens import (
    EphemeralToken,
    HttpTokenSource,
    TokenError,
    TokenKeeper,
    is_token,
    probe_token,
)
from emodesk.tokenserver.service import Minter, ServiceConfig, build_app
from tests.support.emulator import (
    FAST_RETRY,
    EventLog,
    push_to_talk_turn,
    running_emulator,
    settings_for,
    tone,
)
from tests.support.keys import fake_api_key

ORG_KEY = fake_api_key("TestOrganisationKey")
SECRET = "client-secret-for-tests-0123456789"


@dataclass
class Rig:
    emulator: EmulatorServer
    rest: RestSide
    token_url: str
    service: AsgiServer


@asynccontextmanager
async def token_rig(
    *, secret: str | None = SECRET, burst: int = 10, **emulator_options: Any
) -> AsyncIterator[Rig]:
    """The emulator (tokens required, the organisation's key the only one accepted), its
    REST side, and the token service minting there, all on loopback with one CA."""
    emulator_options.setdefault("require_tokens", True)
    async with (
        running_emulator(api_keys={ORG_KEY}, **emulator_options) as emulator,
        RestSide(emulator) as rest,
    ):
        config = ServiceConfig(
            endpoint=rest.url, ca_file=emulator.ca_file, client_secret=secret, burst=burst
        )
        assert emulator.certificate is not None
        service = AsgiServer(
            build_app(Minter(ORG_KEY, config), config),
            certfile=str(emulator.certificate.cert_file),
            keyfile=str(emulator.certificate.key_file),
        )
        await service.start()
        try:
            yield Rig(emulator, rest, f"https://127.0.0.1:{service.port}/v1/token", service)
        finally:
            await service.stop()


def source(rig: Rig, secret: str | None = SECRET) -> HttpTokenSource:
    return HttpTokenSource(rig.token_url, ca_file=rig.emulator.ca_file, secret=secret, env={})


@asynccontextmanager
async def token_session(
    rig: Rig, token_source: Any = None, **changes: Any
) -> AsyncIterator[tuple[LiveSession, EventLog]]:
    session = LiveSession(
        retry=FAST_RETRY,
        connect_timeout_s=5.0,
        token_source=token_source or (lambda settings: source(rig)),
    )
    log = EventLog()
    session.set_listener(log)
    session.set_history(log.said)
    changes.setdefault("api_key", "")
    changes.setdefault("token_url", rig.token_url)
    async with asyncio.timeout(10):
        await session.start(settings_for(rig.emulator, **changes))
    try:
        yield session, log
    finally:
        async with asyncio.timeout(10):
            await session.close()


class Spoiling:
    """A token source whose first `spoil` tokens the emulator has already expired (as a
    token that waited too long on its way, or a clock that runs ahead, would be)."""

    def __init__(self, inner: HttpTokenSource, emulator: EmulatorServer, spoil: int) -> None:
        self.inner, self.emulator, self.spoil = inner, emulator, spoil
        self.fetched: list[str] = []

    async def fetch(self) -> EphemeralToken:
        token = await self.inner.fetch()
        self.fetched.append(token.name)
        if len(self.fetched) <= self.spoil:
            minted = self.emulator.tokens.get(token.name)
            assert minted is not None
            minted.expire_at = 0.0
        return token


def _states(log: EventLog, state: LinkState) -> list[LinkStateChanged]:
    return [e for e in log.of(LinkStateChanged) if e.state is state]


# -- the token service -----------------------------------------------------------------


async def test_the_token_service_mints_on_the_emulators_rest_side(caplog) -> None:
    caplog.set_level(logging.INFO)
    async with token_rig() as rig:
        token = await source(rig).fetch()
        assert is_token(token.name) and rig.emulator.tokens.get(token.name) is not None
        assert token.uses == 1
        assert 0 < token.new_session_expire_at - rig.emulator.tokens.clock() <= 61
        assert 9 * 60 < token.expire_at - rig.emulator.tokens.clock() <= 10 * 60 + 1
        (request,) = rig.emulator.minted  # what the SDK sent to the REST side
        assert request["uses"] == 1
        locked = request["bidiGenerateContentSetup"]
        assert locked["model"] == "models/gemini-3.1-flash-live-preview"
        assert locked["generationConfig"]["responseModalities"] == ["AUDIO"]
        assert "speechConfig" not in locked and "systemInstruction" not in locked
        assert "model" in request["fieldMask"].split(",")

        def health() -> Any:
            context = ssl.create_default_context(cafile=rig.emulator.ca_file)
            url = rig.token_url.replace("/v1/token", "/healthz")
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                return json.loads(response.read())

        assert await asyncio.to_thread(health) == {"status": "ok"}
    access = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith(".access")]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("POST", "/v1/token", 200),
        ("GET", "/healthz", 200),
    ]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert token.name not in everything and ORG_KEY not in everything
    assert SECRET not in everything


async def test_clients_need_the_secret_and_are_rate_limited() -> None:
    async with token_rig(burst=2) as rig:
        with pytest.raises(TokenError) as refused:
            await source(rig, secret="not-the-secret-at-all").fetch()
        assert refused.value.status == 401 and not refused.value.retryable
        with pytest.raises(TokenError) as anonymous:
            await source(rig, secret="").fetch()
        assert anonymous.value.status == 401
        await source(rig).fetch()
        await source(rig).fetch()
        with pytest.raises(TokenError) as limited:
            await source(rig).fetch()
        assert limited.value.status == 429 and limited.value.retryable
        assert len(rig.emulator.minted) == 2  # refused clients never reach the Live service


async def test_the_rest_side_refuses_keys_it_does_not_know() -> None:
    async with token_rig() as rig:
        config = ServiceConfig(endpoint=rig.rest.url, ca_file=rig.emulator.ca_file)
        with pytest.raises(Exception, match="API key not valid"):
            await Minter("AIzaSyNotTheOrganisationsKey0123456789", config).mint()
        assert len(rig.emulator.tokens) == 0


# -- Live sessions with tokens ---------------------------------------------------------


async def test_a_session_connects_with_a_token_and_a_resumption_gets_a_new_one() -> None:
    async with token_rig(faults="drop@2") as rig, token_session(rig) as (s, log):
        assert s.state is LinkState.CONNECTED
        push_to_talk_turn(s, tone(0.3))
        await log.wait_for(TurnComplete)
        push_to_talk_turn(s, tone(0.3))  # the emulator drops the link at turn 2
        await log.wait_for(TurnComplete, count=2)
        first, second = rig.emulator.connections[:2]
        assert first.path.endswith("v1alpha.GenerativeService.BidiGenerateContentConstrained")
        assert is_token(first.api_key or "") and is_token(second.api_key or "")
        assert first.api_key != second.api_key  # the first token was spent: a new one
        assert second.resumed_from is not None
        assert len(rig.emulator.minted) == 2
        assert not log.of(SessionError) or all(not e.auth for e in log.of(SessionError))


async def test_an_expired_token_is_refused_and_replaced() -> None:
    async with token_rig() as rig:
        spoiling = Spoiling(source(rig), rig.emulator, spoil=1)
        async with token_session(rig, token_source=lambda settings: spoiling) as (s, log):
            assert s.state is LinkState.CONNECTED
            refused, accepted = rig.emulator.connections
            assert (refused.close_code, refused.close_reason) == (1008, TOKEN_EXPIRED)
            assert refused.api_key == spoiling.fetched[0]
            assert accepted.api_key == spoiling.fetched[1] and accepted.close_code is None
            assert "new access token" in _states(log, LinkState.RECONNECTING)[0].reason
            assert not log.of(SessionError)


async def test_tokens_refused_twice_in_a_row_fail_as_a_token_not_a_key() -> None:
    async with token_rig() as rig:
        spoiling = Spoiling(source(rig), rig.emulator, spoil=5)
        async with token_session(rig, token_source=lambda settings: spoiling) as (s, log):
            assert s.state is LinkState.FAILED
            (error,) = log.of(SessionError)
            assert not error.auth and error.code == 1008
            assert "refused the access token" in error.message
            assert "API key" not in error.message
            assert len(spoiling.fetched) == 2
            assert all(name not in error.message for name in spoiling.fetched)


async def test_a_token_used_up_is_refused_with_1008() -> None:
    async with token_rig() as rig:
        token = await source(rig).fetch()
        async with token_session(rig, api_key=token.name, token_url=None) as (s, _log):
            assert s.state is LinkState.CONNECTED
        async with token_session(rig, api_key=token.name, token_url=None) as (s, log):
            assert s.state is LinkState.FAILED  # a pasted token has no service to renew it
            (error,) = log.of(SessionError)
            assert error.code == 1008 and not error.auth
        assert rig.emulator.connections[-1].close_reason == TOKEN_USED_UP


async def test_the_token_service_refusing_the_client_is_reported_as_such() -> None:
    async with token_rig() as rig:
        wrong = source(rig, secret="not-the-secret-at-all")
        async with token_session(rig, token_source=lambda settings: wrong) as (s, log):
            assert s.state is LinkState.FAILED
            (error,) = log.of(SessionError)
            assert error.message.startswith("No access token from the token service")
            assert "HTTP 401" in error.message and not error.auth
            assert rig.emulator.connections == []  # nothing reached the Live service


async def test_a_plain_key_is_refused_when_tokens_are_required() -> None:
    async with token_rig() as rig, token_session(rig, api_key=ORG_KEY, token_url=None) as (s, log):
        assert s.state is LinkState.FAILED
        (error,) = log.of(SessionError)
        assert error.auth and error.code == 1008
        assert ORG_KEY not in error.message
        (refused,) = rig.emulator.connections
        assert refused.close_reason == KEYS_REFUSED


async def test_a_token_on_the_plain_endpoint_is_refused() -> None:
    async with token_rig() as rig:
        token = await source(rig).fetch()
        # api_version v1beta: the SDK takes the constrained method, on the wrong version.
        async with token_session(rig, api_key=token.name, token_url=None, api_version="v1beta") as (
            s,
            _log,
        ):
            assert s.state is LinkState.FAILED
        assert rig.emulator.connections[0].close_code == 1008


# -- when a new token is fetched -------------------------------------------------------


class _Counting:
    def __init__(self, clock: list[float], life_s: float = 600.0, fail: bool = False) -> None:
        self.clock, self.life_s, self.fail, self.count = clock, life_s, fail, 0

    async def fetch(self) -> EphemeralToken:
        if self.fail:
            raise TokenError("down")
        self.count += 1
        now = self.clock[0]
        return EphemeralToken(f"auth_tokens/t{self.count}", now + self.life_s, now + 60, 1)


async def test_the_keeper_fetches_for_spent_and_nearly_expired_tokens_only() -> None:
    now = [1000.0]
    counting = _Counting(now)
    keeper = TokenKeeper(counting, clock=lambda: now[0])
    assert await keeper.for_connect(resuming=False) == "auth_tokens/t1"
    assert await keeper.for_connect(resuming=False) == "auth_tokens/t1"  # not used yet
    keeper.connected(resuming=False)
    assert await keeper.for_connect(resuming=True) == "auth_tokens/t2"  # t1 is spent
    keeper.connected(resuming=True)  # a resumption spends no use
    now[0] += 100  # past t2's new-session time, well before its end
    assert await keeper.for_connect(resuming=True) == "auth_tokens/t2"
    assert await keeper.for_connect(resuming=False) == "auth_tokens/t3"
    now[0] += 590  # t3 nearly expired
    assert await keeper.for_connect(resuming=True) == "auth_tokens/t4"
    assert keeper.fetches == counting.count == 4


async def test_a_resumption_falls_back_to_its_unexpired_token_when_the_service_is_down() -> None:
    now = [1000.0]
    counting = _Counting(now)
    keeper = TokenKeeper(counting, clock=lambda: now[0])
    await keeper.for_connect(resuming=False)
    keeper.connected(resuming=False)
    counting.fail = True
    assert await keeper.for_connect(resuming=True) == "auth_tokens/t1"
    with pytest.raises(TokenError):
        await keeper.for_connect(resuming=False)


# -- Test key, for tokens ---------------------------------------------------------------


async def test_test_key_tests_a_token_as_a_token() -> None:
    async with token_rig() as rig:
        where = {"endpoint": rig.emulator.url, "ca_file": rig.emulator.ca_file}
        token = (await source(rig).fetch()).name
        ok, message = await probe_token(token, **where)
        assert ok and "the token works" in message and "used one of its uses" in message
        ok, message = await probe_token(token, **where)  # its one use is gone
        assert not ok and message.startswith("the token was refused (1008")
        assert TOKEN_USED_UP in message and "key" not in message and token not in message


async def test_test_key_with_a_token_service_tests_the_service_too(monkeypatch) -> None:
    async with token_rig() as rig:
        where = {"endpoint": rig.emulator.url, "ca_file": rig.emulator.ca_file}
        monkeypatch.setenv("EMODESK_TOKEN_SECRET", SECRET)
        ok, message = await probe_token(None, token_url=rig.token_url, **where)
        assert ok and "the token service works" in message
        monkeypatch.setenv("EMODESK_TOKEN_SECRET", "not-the-secret-at-all")
        ok, message = await probe_token(None, token_url=rig.token_url, **where)
        assert not ok and "HTTP 401" in message
        assert len(rig.emulator.connections) == 1
