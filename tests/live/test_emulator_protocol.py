"""The emulator enforces the wire protocol like Google's server (raw WebSocket client)."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from emodesk.live.emulator.faults import FaultKind, FaultSpecError, parse_faults
from emodesk.live.emulator.server import EmulatorServer
from emodesk.live.emulator.synth import synthesize
from tests.support.emulator import running_emulator, tone

PATH = "/ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent"
MANUAL = {"automaticActivityDetection": {"disabled": True}}
SETUP = {"setup": {"model": "models/gemini-3.1-flash-live-preview", "realtimeInputConfig": MANUAL}}


def _ws(server: EmulatorServer, path: str = PATH, key: str | None = "k"):
    context = ssl.create_default_context(cafile=server.ca_file)
    headers = {"x-goog-api-key": key} if key else {}
    return connect(f"wss://127.0.0.1:{server.port}{path}", ssl=context, additional_headers=headers)


async def _recv_json(ws) -> dict:
    raw = await ws.recv()
    assert isinstance(raw, bytes)  # Google answers in binary frames
    return json.loads(raw)


async def _closed_with(ws) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(5):
            while True:
                await ws.recv()
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_setup_must_come_first() -> None:
    async with running_emulator() as server, _ws(server) as ws:
        await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
        code, reason = await _closed_with(ws)
        assert code == 1007 and "setup" in reason


async def test_camel_case_and_standard_base64_accepted() -> None:
    pcm = tone(0.05) + b"\xfb\xff" * 8  # bytes whose base64 differs between alphabets
    async with running_emulator() as server, _ws(server) as ws:
        await ws.send(json.dumps(SETUP))
        assert "setupComplete" in await _recv_json(ws)
        await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            blob = {"mimeType": "audio/pcm;rate=16000", "data": encode(pcm).decode()}
            await ws.send(json.dumps({"realtime_input": {"audio": blob}}))
        await ws.send(json.dumps({"realtimeInput": {"activityEnd": {}}}))
        async with asyncio.timeout(5):
            while "turnComplete" not in (await _recv_json(ws)).get("serverContent", {}):
                pass  # read the reply, as a client must, so the close handshake is prompt
        assert bytes(server.all_turns()[0].audio) == pcm + pcm


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"realtimeInput": {"audio": {"mimeType": "audio/wav", "data": "AAAA"}}}, "mime"),
        ({"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=96000", "data": "AA"}}}, "rate"),
        ({"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": "AAAA"}}}, "16-bit"),
        ({"realtimeInput": {"activityEnd": {}}}, "without activity_start"),
        ({"bogus": {}}, "Unknown name"),
        (SETUP, "only be sent once"),
    ],
)  # fmt: skip
async def test_wrong_messages_close_with_1007(message: dict, words: str) -> None:
    async with running_emulator() as server, _ws(server) as ws:
        await ws.send(json.dumps(SETUP))
        await _recv_json(ws)
        await ws.send(json.dumps(message))
        code, reason = await _closed_with(ws)
        assert code == 1007 and words in reason


async def test_activity_signals_need_automatic_detection_off() -> None:
    async with running_emulator() as server, _ws(server) as ws:
        await ws.send(json.dumps({"setup": {"model": "models/gemini-3.1-flash-live-preview"}}))
        await _recv_json(ws)
        await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
        code, reason = await _closed_with(ws)
        assert code == 1007 and "automatic activity detection" in reason


async def test_handshake_checks_path_and_key() -> None:
    async with running_emulator() as server:
        with pytest.raises(InvalidStatus) as missing_key:
            async with _ws(server, key=None):
                pass
        assert missing_key.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as wrong_path:
            async with _ws(server, path="/ws/nothing"):
                pass
        assert wrong_path.value.response.status_code == 404


async def test_unknown_resumption_handle_is_refused() -> None:
    async with running_emulator() as server, _ws(server) as ws:
        setup = {"setup": {**SETUP["setup"], "sessionResumption": {"handle": "nope"}}}
        await ws.send(json.dumps(setup))
        code, reason = await _closed_with(ws)
        assert code == 1007 and "handle" in reason


def test_fault_lists_parse_and_refuse_nonsense() -> None:
    plan = parse_faults("drop@2, goaway@3,close1011@4,close1007@1,slow@2,burst@2,malformed@*")
    assert plan.at(2) == {FaultKind.DROP, FaultKind.SLOW, FaultKind.BURST, FaultKind.MALFORMED}
    assert plan.at(5) == {FaultKind.MALFORMED}
    for bad in ("explode@1", "drop", "drop@0", "drop@x"):
        with pytest.raises(FaultSpecError):
            parse_faults(bad)


def test_synthetic_speech_is_deterministic_and_voice_dependent() -> None:
    import numpy as np

    a = synthesize("hello there", "Puck")
    assert a == synthesize("hello there", "Puck")
    assert len(a) == round(len("hello there") / 14 * 24_000) * 2

    def pitch(pcm: bytes) -> float:
        # Autocorrelation over a voiced stretch: the strongest lag between 2.5 and 16 ms.
        x = np.frombuffer(pcm, dtype="<i2").astype(float)[2_400:7_200]
        corr = np.correlate(x, x, mode="full")[x.size - 1 :]
        lags = np.arange(60, 400)
        return 24_000 / float(lags[np.argmax(corr[lags])])

    low, high = (
        synthesize("a long sentence here", "Charon"),
        synthesize("a long sentence here", "Kore"),
    )
    assert pitch(low) < pitch(high)
