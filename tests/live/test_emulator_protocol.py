"""The emulator enforces the wire protocol like Google's server (raw WebSocket client)."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl

import numpy as np
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


async def _read_to_turn_complete(ws) -> None:
    """Reads the reply, as a client must, so the close handshake is prompt."""
    async with asyncio.timeout(5):
        while "turnComplete" not in (await _recv_json(ws)).get("serverContent", {}):
            pass


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
    # Worked by hand: "hello there" is 11 characters; at 14 characters a second that is
    # 11 / 14 = 0.785714 s, 18,857.14 samples at 24 kHz, rounded to 18,857 of 2 bytes.
    assert len(a) == 37_714

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


async def test_initial_history_comes_before_realtime_input() -> None:
    setup = {"setup": {**SETUP["setup"], "historyConfig": {"initialHistoryInClientContent": True}}}
    history = {"role": "user", "parts": [{"text": "earlier words"}]}
    async with running_emulator() as server:
        async with _ws(server) as ws:  # realtime input too early: rejected
            await ws.send(json.dumps(setup))
            assert "setupComplete" in await _recv_json(ws)
            await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
            code, reason = await _closed_with(ws)
            assert code == 1007 and "initial history" in reason
        async with _ws(server) as ws:  # history, complete: no reply, then a normal turn
            await ws.send(json.dumps(setup))
            assert "setupComplete" in await _recv_json(ws)
            await ws.send(json.dumps({"clientContent": {"turns": [history], "turnComplete": True}}))
            await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
            await ws.send(json.dumps({"realtimeInput": {"activityEnd": {}}}))
            async with asyncio.timeout(5):
                while "turnComplete" not in (await _recv_json(ws)).get("serverContent", {}):
                    pass
        (turn,) = server.connections[1].turns  # the history itself was not answered
        assert turn.number == 1 and turn.completed


async def test_the_wire_log_is_kept_only_when_asked() -> None:

    async with running_emulator(record=False) as server, _ws(server, key="k-secret") as ws:
        await ws.send(json.dumps(SETUP))
        assert "setupComplete" in await _recv_json(ws)
        await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
        blob = {"mimeType": "audio/pcm;rate=16000", "data": base64.b64encode(tone(0.1)).decode()}
        await ws.send(json.dumps({"realtimeInput": {"audio": blob}}))
        await ws.send(json.dumps({"realtimeInput": {"activityEnd": {}}}))
        await _read_to_turn_complete(ws)
        (record,) = server.connections
        assert server.received == [] and record.received == []
        assert record.setup is not None  # the setup is still there to inspect
        assert "k-secret" not in repr(record) and record.api_key == "k-secret"
    assert EmulatorServer().record is False  # the app's default


async def test_only_the_newest_turns_keep_their_audio_unless_recording() -> None:
    # The app's offline demo runs the emulator in its own process: every turn's audio kept
    # would grow its memory with each second spoken.
    from emodesk.live.emulator.server import TURN_AUDIO_KEPT

    spoken = [tone(0.1 + 0.01 * i) for i in range(TURN_AUDIO_KEPT + 3)]
    for record in (False, True):
        async with running_emulator(record=record) as server, _ws(server) as ws:
            await ws.send(json.dumps(SETUP))
            assert "setupComplete" in await _recv_json(ws)
            for pcm in spoken:
                blob = {"mimeType": "audio/pcm;rate=16000", "data": base64.b64encode(pcm).decode()}
                await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
                await ws.send(json.dumps({"realtimeInput": {"audio": blob}}))
                await ws.send(json.dumps({"realtimeInput": {"activityEnd": {}}}))
                await _read_to_turn_complete(ws)
            turns = server.all_turns()
            assert [t.completed for t in turns] == [True] * len(spoken)
            assert [round(t.audio_seconds, 2) for t in turns] == [
                round(0.1 + 0.01 * i, 2) for i in range(len(spoken))
            ]
            kept = [bytes(t.audio) == pcm for t, pcm in zip(turns, spoken, strict=True)]
            assert kept == [record] * 3 + [True] * TURN_AUDIO_KEPT
            assert all(not t.audio for t, k in zip(turns, kept, strict=True) if not k)


async def test_resumption_snapshots_are_shared_and_bounded(monkeypatch) -> None:
    from emodesk.live.emulator import server as emulator_server

    monkeypatch.setattr(emulator_server, "MAX_SESSION_HANDLES", 3)
    async with running_emulator() as server, _ws(server) as ws:
        await ws.send(json.dumps({"setup": {**SETUP["setup"], "sessionResumption": {}}}))
        for _turn in range(3):
            await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
            await ws.send(json.dumps({"realtimeInput": {"activityEnd": {}}}))
            await _read_to_turn_complete(ws)
            await _recv_json(ws)  # usage
            assert "sessionResumptionUpdate" in await _recv_json(ws)
        snapshots = list(server.sessions.values())
        assert len(snapshots) == 3  # 4 handles were given out; the oldest expired
        assert len(snapshots[-1].history) == 6
        # The newest two share the history of their first turns instead of copying it.
        assert snapshots[-1].history[:4] == snapshots[-2].history
        assert snapshots[-1].history[0] is snapshots[-2].history[0]


async def test_reply_audio_is_synthesised_off_the_event_loop(monkeypatch) -> None:
    import threading

    from emodesk.live.emulator import server as emulator_server

    threads: list[threading.Thread] = []

    def recording_synthesize(text: str, voice: str) -> bytes:
        threads.append(threading.current_thread())
        return synthesize(text, voice)

    monkeypatch.setattr(emulator_server, "synthesize", recording_synthesize)
    async with running_emulator() as server, _ws(server) as ws:
        await ws.send(json.dumps(SETUP))
        await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
        await ws.send(json.dumps({"realtimeInput": {"activityEnd": {}}}))
        await _read_to_turn_complete(ws)
    assert threads and threading.main_thread() not in threads


def _tone(dbfs: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    amplitude = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)  # a sine's RMS is peak / sqrt 2
    return (np.sin(2 * np.pi * 220 * t) * amplitude).astype(np.int16)


@pytest.mark.parametrize(
    ("dbfs", "emotion", "energy"),
    [(-6.0, "angry", "high"), (-20.0, "neutral", "medium"), (-40.0, "sad", "low")],
)
def test_the_emulators_model_judges_a_spoken_turn_by_loudness_alone(
    dbfs: float, emotion: str, energy: str
) -> None:
    from emodesk.live.emulator.server import model_rule

    said = model_rule(_tone(dbfs))
    assert (said["emotion"], said["energy_level"]) == (emotion, energy)


@pytest.mark.parametrize(
    ("text", "emotion"),
    [("I am furious about this", "angry"), ("I'm so worried, please hurry", "anxious"),
     ("feeling a bit down today", "sad"), ("thanks, that is great", "happy"),
     ("what is the time", "neutral")],
)  # fmt: skip
def test_the_emulators_model_judges_a_typed_turn_by_its_words(text: str, emotion: str) -> None:
    from emodesk.live.emulator.server import model_rule

    assert model_rule(np.zeros(0, np.int16), text)["emotion"] == emotion
