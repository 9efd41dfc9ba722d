"""The real google-genai SDK against the emulator over real TLS: turns, tool calls, barge-in."""

from __future__ import annotations

from emodesk.live.emulator.wire import normalize_keys
from emodesk.live.events import (
    AudioChunk,
    AudioDropped,
    GenerationComplete,
    InputTranscript,
    Interrupted,
    LinkState,
    LinkStateChanged,
    OutputTranscript,
    ResumptionHandle,
    TurnComplete,
)
from tests.support.emulator import (
    ToolAnswered,
    frames,
    live_session,
    push_to_talk_turn,
    running_emulator,
    tone,
)


async def test_push_to_talk_turn_end_to_end() -> None:
    pcm = tone(0.4)
    async with running_emulator() as server, live_session(server) as (session, log):
        assert log.of(LinkStateChanged)[-1].state is LinkState.CONNECTED
        push_to_talk_turn(session, pcm)
        await log.wait_for(TurnComplete)

        # On the wire: setup first, then start, every frame as 16 kHz PCM, then end.
        first = server.received[0]
        assert "setup" in first
        wire = [normalize_keys(m) for m in server.received]
        realtime = [m["realtime_input"] for m in wire if "realtime_input" in m]
        assert "activity_start" in realtime[0] and "activity_end" in realtime[-1]
        audio = [r["audio"] for r in realtime if "audio" in r]
        assert len(audio) == len(frames(pcm))
        assert {a["mime_type"] for a in audio} == {"audio/pcm;rate=16000"}
        turn = server.connections[0].turns[0]
        assert bytes(turn.audio) == pcm and turn.completed

        # Back as events: the user's transcript, 24 kHz reply audio, its transcript.
        assert log.of(InputTranscript)[0].text == "[0.40 s of speech]"
        chunks = log.of(AudioChunk)
        assert chunks and {c.rate for c in chunks} == {24_000}
        assert sum(len(c.data) for c in chunks) == turn.reply_bytes
        spoken = "".join(t.text for t in log.of(OutputTranscript))
        assert spoken == turn.reply_text
        kinds = [type(e) for e in log.events]
        assert kinds.index(GenerationComplete) < kinds.index(TurnComplete)
        assert log.said() == (("user", "[0.40 s of speech]"), ("model", turn.reply_text))

        # The newest handle is kept, and a second turn works on the same link.
        await log.wait_for(ResumptionHandle, count=2)
        assert session.resume_handle == log.of(ResumptionHandle)[-1].handle
        push_to_talk_turn(session, pcm)
        await log.wait_for(TurnComplete, count=2)
        assert len(server.connections) == 1


async def test_a_function_call_is_dispatched_and_answered_before_the_reply() -> None:
    async with (
        running_emulator() as server,
        live_session(server, emotion_tool=True) as (session, log),
    ):
        push_to_talk_turn(session, tone(0.3))
        answered = await log.wait_for(ToolAnswered)
        await log.wait_for(TurnComplete)
        turn = server.connections[0].turns[0]
        # The dispatcher got the call as the model made it.
        assert answered.name == "report_user_emotion" and answered.args == turn.tool_args
        # The wire carries the answer with the call's id, before any reply audio.
        responses = [m["tool_response"] for m in server.received if "tool_response" in m]
        assert responses == [
            {
                "functionResponses": [
                    {"id": turn.tool_call_id, "name": "report_user_emotion",
                     "response": {"result": "ok"}}
                ]
            }
        ]  # fmt: skip
        kinds = [type(e) for e in log.events]
        assert kinds.index(ToolAnswered) < kinds.index(AudioChunk)


async def test_unreadable_emotion_arguments_are_answered_with_the_reason() -> None:
    async with running_emulator() as server:
        server._estimate = lambda pcm, rate: {"emotion": "bored", "confidence": "very"}
        async with live_session(server, emotion_tool=True) as (session, log):
            push_to_talk_turn(session, tone(0.2))
            answered = await log.wait_for(ToolAnswered)
            await log.wait_for(TurnComplete)  # the reply still comes: the call was answered
            turn = server.connections[0].turns[0]
            assert answered.response == {"error": "confidence is not a number: 'very'"}
            assert turn.tool_response["response"] == answered.response


async def test_barge_in_stops_the_reply() -> None:
    async with running_emulator(speed=2.0) as server, live_session(server) as (session, log):
        push_to_talk_turn(session, tone(0.2))
        await log.wait_for(AudioChunk)
        session.activity_start()  # the user talks over the reply
        await log.wait_for(Interrupted)
        server.speed = 50.0  # the next reply need not take long
        for frame in frames(tone(0.2)):
            session.send_audio(frame)
        session.activity_end()
        await log.wait_for(TurnComplete)
        first, second = server.connections[0].turns
        assert first.interrupted and not first.completed
        assert second.completed and len(second.audio) == len(tone(0.2))
        # Only part of the first reply was streamed before the interruption. Worked by
        # hand: its text is 58 characters; at 14 characters a second the whole reply is
        # 58 / 14 = 4.142857 s, 99,428.57 samples at 24 kHz, rounded to 99,429 of 2 bytes.
        assert first.reply_text == "Synthetic reply 1, in the voice Puck, to 0.20 s of speech."
        assert 0 < first.reply_bytes < 198_858
        assert len(log.of(TurnComplete)) == 1


async def test_hands_free_turn_uses_server_side_detection() -> None:
    async with (
        running_emulator() as server,
        live_session(server, push_to_talk=False, vad_silence_ms=200) as (session, log),
    ):
        setup = server.connections[0].received[0]["setup"]
        detection = setup["realtimeInputConfig"]["automatic_activity_detection"]
        assert detection["disabled"] is False
        assert detection["silence_duration_ms"] == 200
        for frame in frames(tone(0.3) + bytes(16_000)):  # speech, then 0.5 s of silence
            session.send_audio(frame)
        await log.wait_for(TurnComplete)
        assert not any("activity_start" in str(m) for m in server.received)
        assert server.connections[0].turns[0].completed


async def test_text_turn() -> None:
    async with running_emulator() as server, live_session(server) as (session, log):
        await session.send_text("hello there")
        await log.wait_for(TurnComplete)
        assert log.of(InputTranscript)[0].text == "hello there"
        assert server.connections[0].turns[0].text == "hello there"


async def test_audio_queued_when_the_server_is_gone_is_reported_dropped() -> None:
    pcm = tone(0.3)
    async with running_emulator() as server, live_session(server) as (session, log):
        await server.stop()  # the server disappears under the session
        session.activity_start()
        for frame in frames(pcm):
            session.send_audio(frame)  # returns at once, whatever the link does
        session.activity_end()
        await log.wait_for(LinkStateChanged, lambda e: e.state is LinkState.FAILED)
        tries = [e for e in log.of(LinkStateChanged) if e.state is LinkState.RECONNECTING]
        assert [e.attempt for e in tries] == [1, 2, 3]  # bounded
        dropped = log.of(AudioDropped)
        assert abs(sum(d.seconds for d in dropped) - 0.3) < 1e-9
