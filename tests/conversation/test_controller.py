"""The controller's state machine on fakes of its ports: states, refusals, wire effects,
interruption, consent gating, voice change, the reading pipeline, latency and failures."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from emodesk.conversation.api import (
    ControllerProtocol,
    ConversationState,
    Intent,
    Notice,
    NoticeKind,
    ReadingAdded,
    ReplyRestarted,
    SessionEnded,
    SessionStarted,
    StateChanged,
    TranscriptLine,
    TrendChanged,
    TurnClosed,
    TurnLatency,
)
from emodesk.conversation.controller import Controller
from emodesk.core.consent import CONSENT_VERSION
from emodesk.core.emotion import EmotionReading
from emodesk.core.emotion_tool import REPORT_EMOTION_TOOL_NAME
from emodesk.core.parsing import ParsedEmotion, parse_emotion_args
from emodesk.live.events import (
    AudioChunk,
    AudioDropped,
    InputTranscript,
    Interrupted,
    LinkState,
    LinkStateChanged,
    OutputTranscript,
    SessionError,
    TurnComplete,
)
from emodesk.live.settings import declares
from tests.conversation.fakes import (
    FakeEstimator,
    FakeLive,
    FakeStore,
)
from tests.support.controller_rig import Rig, make_rig, speak_turn

S = ConversationState
REPLY = AudioChunk(b"\x00\x01" * 480, 24000)
pytestmark = pytest.mark.timeout(10)


def test_every_intent_names_a_method_of_the_controller() -> None:
    for intent in Intent:
        assert callable(getattr(Controller, intent.value, None)), intent
        assert hasattr(ControllerProtocol, intent.value), intent


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = make_rig()
    yield r
    await r.controller.close()


@pytest.fixture
async def consenting() -> AsyncIterator[Rig]:
    r = make_rig(consent=True)
    yield r
    await r.controller.close()


def model_reading(emotion: str = "sad") -> ParsedEmotion:
    # The model's report; the controller places it on its turn.
    return parse_emotion_args(report_args(emotion))


def report_args(emotion: str = "sad", energy: str = "low") -> dict[str, Any]:
    """The arguments of the model's report_user_emotion call."""
    return {"emotion": emotion, "confidence": 0.9, "energy_level": energy}


async def model_reports(r: Rig, emotion: str = "sad", energy: str = "low") -> dict[str, Any]:
    """The model calls report_user_emotion; the controller's answer."""
    return await r.live.call_tool(REPORT_EMOTION_TOOL_NAME, report_args(emotion, energy))


async def angry_turns(r: Rig, count: int) -> None:
    """`count` whole turns in which both sources hear anger (the acoustic double is angry)."""
    for _ in range(count):
        speak_turn(r)
        await r.controller.drain()
        await model_reports(r, "angry", "high")
        await r.controller.drain()
        r.live.emit(TurnComplete())


def test_controller_satisfies_the_protocol_the_ui_codes_against() -> None:
    def takes(c: ControllerProtocol) -> ControllerProtocol:
        return c

    controller = make_rig().controller
    assert takes(controller) is controller
    for name in dir(ControllerProtocol):
        if not name.startswith("_"):
            assert hasattr(controller, name), name


async def test_connect_goes_offline_connecting_ready_and_starts_a_session(rig: Rig) -> None:
    assert rig.controller.state is S.OFFLINE
    assert await rig.controller.connect()
    assert rig.states() == [S.CONNECTING, S.READY]
    started = rig.of(SessionStarted)
    assert len(started) == 1 and started[0].synthetic
    await rig.controller.drain()
    assert list(rig.store.sessions) == [rig.controller.session_id]
    settings = rig.live.settings[0]
    assert settings.push_to_talk and settings.endpoint == "wss://127.0.0.1:1"


async def test_intents_that_do_not_fit_the_state_are_refused_with_a_reason(rig: Rig) -> None:
    assert not rig.controller.push_to_talk_down()
    assert not rig.controller.push_to_talk_up()
    assert not await rig.controller.export("/tmp/never.csv")
    assert not await rig.controller.end_session()
    assert not await rig.controller.send_text("hello")
    assert rig.refused() == [
        ("push_to_talk_down", "not connected"),
        ("push_to_talk_up", "push-to-talk is not held"),
        ("export", "no session to export"),
        ("end_session", "no session is open"),
        ("send_text", "not connected"),
    ]
    assert rig.live.wire == []


async def test_push_to_talk_while_connecting_is_refused() -> None:
    gate = asyncio.Event()

    class SlowLive(FakeLive):
        async def start(self, settings: Any) -> None:
            self.emit(LinkStateChanged(LinkState.CONNECTING))
            await gate.wait()
            await super().start(settings)

    r = make_rig(live=SlowLive())
    connecting = asyncio.ensure_future(r.controller.connect())
    assert await r.controller.wait_for_state(S.CONNECTING, limit_s=2)
    assert not r.controller.push_to_talk_down()
    assert r.refused()[-1] == ("push_to_talk_down", "still connecting")
    assert not await r.controller.connect()
    gate.set()
    assert await asyncio.wait_for(connecting, 2)
    assert r.controller.state is S.READY
    await r.controller.close()


async def test_push_to_talk_sends_start_audio_end_and_waits_for_the_reply(rig: Rig) -> None:
    await rig.controller.connect()
    assert rig.controller.push_to_talk_down()
    assert rig.controller.state is S.LISTENING
    assert not rig.controller.push_to_talk_down()  # already held
    rig.audio.feed(5)
    assert rig.controller.push_to_talk_up()
    assert not rig.audio.capturing
    assert rig.controller.state is S.WAITING
    assert rig.live.kinds() == ["start", "activity_start", "audio", "activity_end"]
    assert sum(1 for w in rig.live.wire if w[0] == "audio") == 5
    rig.live.emit(REPLY)
    assert rig.controller.state is S.REPLYING
    assert rig.audio.played == [(len(REPLY.data), 24000)]
    rig.live.emit(TurnComplete())
    assert rig.controller.state is S.READY
    assert rig.states()[-4:] == [S.LISTENING, S.WAITING, S.REPLYING, S.READY]


async def test_a_very_short_press_still_ends_the_activity(rig: Rig) -> None:
    await rig.controller.connect()
    assert rig.controller.push_to_talk_down()
    assert rig.controller.push_to_talk_up()
    assert rig.live.kinds()[-2:] == ["activity_start", "activity_end"]


async def test_mic_frames_outside_a_press_never_reach_the_wire(rig: Rig) -> None:
    await rig.controller.connect()
    speak_turn(rig, frames=2)
    late_frame = rig.audio.on_frame
    assert late_frame is not None
    late_frame(b"\x00" * 640)  # a frame already in flight when capture stopped
    assert sum(1 for w in rig.live.wire if w[0] == "audio") == 2


async def test_pressing_while_the_model_speaks_flushes_playback_at_once(rig: Rig) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    rig.live.emit(REPLY)
    flushes = rig.audio.flushes
    assert rig.controller.push_to_talk_down()
    assert rig.audio.flushes == flushes + 1
    assert rig.controller.state is S.LISTENING
    rig.live.emit(REPLY)  # the interrupted reply's tail, still in flight
    assert len(rig.audio.played) == 1
    rig.live.emit(Interrupted())
    rig.audio.feed(3)
    assert rig.controller.push_to_talk_up()
    rig.live.emit(REPLY)  # the answer to the new turn plays
    assert len(rig.audio.played) == 2 and rig.controller.state is S.REPLYING


async def test_reply_audio_played_early_is_accounted_once_and_silenced_if_unwanted(
    rig: Rig,
) -> None:
    """The Live session's thread plays a chunk at once when the conversation takes it
    (`play_reply_audio_early`); its event then only keeps account. A chunk played on an
    answer this loop has since changed (the user pressed over the reply) is silenced."""
    await rig.controller.connect()
    assert rig.controller.push_to_talk_down()
    assert not rig.controller.play_reply_audio_early(REPLY)  # the user is speaking
    rig.audio.feed(3)
    assert rig.controller.push_to_talk_up()
    assert rig.controller.play_reply_audio_early(REPLY)
    assert len(rig.audio.played) == 1
    rig.live.emit(dataclasses.replace(REPLY, played=True))
    assert len(rig.audio.played) == 1 and rig.controller.state is S.REPLYING
    flushes = rig.audio.flushes
    assert rig.controller.play_reply_audio_early(REPLY)  # then the user presses over it
    assert rig.controller.push_to_talk_down()
    assert rig.audio.flushes == flushes + 1
    rig.live.emit(dataclasses.replace(REPLY, played=True))  # that chunk's event, late
    assert rig.audio.flushes == flushes + 2  # what it queued after the press is dropped
    assert not rig.controller.play_reply_audio_early(REPLY)  # the tail is not played


async def test_server_interruption_flushes_and_returns_to_ready(rig: Rig) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    rig.live.emit(REPLY)
    rig.live.emit(Interrupted())
    assert rig.audio.flushes >= 1
    assert rig.controller.state is S.READY


@pytest.mark.parametrize("silenced_early", [True, False])
async def test_a_reply_silenced_on_the_session_thread_keeps_only_what_was_heard(
    rig: Rig, silenced_early: bool
) -> None:
    """The Live session's thread silences a reply the server stopped at once
    (`silence_reply_early`); what that dropped unheard comes with the `Interrupted` event,
    where this loop's own flush finds nothing left, and still trims the turn's text."""
    await rig.controller.connect()
    speak_turn(rig)
    rig.live.emit(REPLY)
    rig.live.emit(OutputTranscript("Heard."))
    rig.audio.unheard_s = 1.0 if silenced_early else 0.0  # none of the reply was heard
    silenced = rig.controller.silence_reply_early()
    assert rig.audio.flushes == 1 and silenced == rig.audio.unheard_s
    rig.audio.unheard_s = 0.0
    rig.live.emit(Interrupted(unheard_s=silenced))
    assert rig.audio.flushes == 2  # audio delivered here before the event is dropped too
    (closed,) = rig.of(TurnClosed)
    assert closed.outcome == "interrupted"
    assert closed.model_text == ("" if silenced_early else "Heard.")
    assert rig.controller.state is S.READY


async def test_latency_from_release_to_first_audio_and_to_first_playback(rig: Rig) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    rig.clock.advance(0.4)
    rig.live.emit(REPLY)
    rig.clock.advance(0.05)
    assert rig.audio.on_playback_started is not None
    rig.audio.on_playback_started(rig.clock())
    rig.live.emit(TurnComplete())
    (latency,) = rig.of(TurnLatency)
    assert latency.turn == 1
    assert latency.to_first_audio_s == pytest.approx(0.4)
    assert latency.to_first_played_s == pytest.approx(0.45)


async def test_latency_is_sent_when_audio_played_early_sounds_before_its_event(
    rig: Rig,
) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    rig.clock.advance(0.3)
    assert rig.controller.play_reply_audio_early(REPLY)
    assert rig.audio.on_playback_started is not None
    rig.audio.on_playback_started(rig.clock())  # the speaker started before the event came
    assert not rig.of(TurnLatency)
    rig.clock.advance(0.01)
    rig.live.emit(dataclasses.replace(REPLY, played=True))
    (latency,) = rig.of(TurnLatency)
    assert latency.to_first_played_s == pytest.approx(0.3)
    assert latency.to_first_audio_s == pytest.approx(0.31)  # as accounted on this loop


async def test_a_turn_with_no_reply_audio_reports_no_latency_figures(rig: Rig) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    rig.live.emit(TurnComplete())
    assert rig.of(TurnLatency) == [TurnLatency(1, None, None)]


async def test_without_consent_no_emotion_anything(rig: Rig) -> None:
    await rig.controller.connect()
    settings = rig.live.settings[0]
    assert not declares(settings, REPORT_EMOTION_TOOL_NAME)
    assert REPORT_EMOTION_TOOL_NAME not in settings.system_instruction
    speak_turn(rig)
    answer = await model_reports(rig)  # a misbehaving server calls it anyway
    assert "unknown function 'report_user_emotion'" in answer["error"]
    rig.live.emit(TurnComplete())
    await rig.controller.drain()
    assert rig.estimator.calls == []
    assert rig.store.entries == {}
    assert rig.of(ReadingAdded) == []
    assert len(rig.controller.timeline) == 0
    meta = rig.store.sessions[rig.controller.session_id or ""]
    assert meta.consent_version is None


async def test_with_consent_both_readings_reach_timeline_tracker_and_store(
    consenting: Rig,
) -> None:
    r = consenting
    await r.controller.connect()
    assert declares(r.live.settings[0], REPORT_EMOTION_TOOL_NAME)
    assert REPORT_EMOTION_TOOL_NAME in r.live.settings[0].system_instruction
    r.clock.advance(1.0)
    speak_turn(r, frames=25, seconds=0.5)
    assert await model_reports(r) == {"result": "ok"}
    r.live.emit(REPLY)
    r.live.emit(TurnComplete())
    await r.controller.drain()
    assert r.estimator.calls == [(1, 25 * 320, pytest.approx(1.0), pytest.approx(1.5))]
    stored = r.store.entries[r.controller.session_id or ""]
    assert sorted(e.reading.source.value for e in stored) == ["acoustic", "model"]
    model = next(e.reading for e in stored if e.reading.source.value == "model")
    assert (model.turn, model.t_start_s, model.t_end_s) == (1, 1.0, 1.5)
    added = r.of(ReadingAdded)
    assert {a.source for a in added} == {"acoustic", "model"}
    assert all(a.turn == 1 for a in added)
    assert len(r.controller.timeline) == 2


async def test_escalation_is_an_event_with_the_profiles_action() -> None:
    r = make_rig(consent=True, profile="support")
    await r.controller.connect()
    for _ in range(4):
        speak_turn(r)
        await model_reports(r, "angry", "high")
        r.live.emit(TurnComplete())
        await r.controller.drain()
    trends = r.of(TrendChanged)
    assert trends[0].trend == "insufficient_data"
    assert trends[-1].escalate and trends[-1].advice == "Offer a human agent"
    escalations = [n for n in r.of(Notice) if n.kind is NoticeKind.ESCALATION]
    assert len(escalations) == 1 and escalations[0].message == "Offer a human agent"
    assert r.of(ReadingAdded)[-1].escalate
    await r.controller.close()


async def test_revoking_consent_stops_readings_and_reconfigures_without_the_tool(
    consenting: Rig,
) -> None:
    r = consenting
    await r.controller.connect()
    speak_turn(r)
    r.live.emit(TurnComplete())
    await r.controller.drain()
    assert len(r.store.entries[r.controller.session_id or ""]) == 1
    assert await r.controller.set_consent(False)
    assert not declares(r.live.settings[-1], REPORT_EMOTION_TOOL_NAME)
    assert REPORT_EMOTION_TOOL_NAME not in r.live.settings[-1].system_instruction
    speak_turn(r)
    await model_reports(r)
    r.live.emit(TurnComplete())
    await r.controller.drain()
    assert len(r.store.entries[r.controller.session_id or ""]) == 1
    assert len(r.estimator.calls) == 1
    assert [c.granted for c in r.store.consents] == [False]
    assert r.store.consents[0].version
    meta = r.store.sessions[r.controller.session_id or ""]
    assert meta.consent_version == CONSENT_VERSION, "readings before the withdrawal had it"
    assert not await r.controller.set_consent(False)


async def test_granting_consent_mid_turn_starts_with_the_next_turn(rig: Rig) -> None:
    await rig.controller.connect()
    assert rig.controller.push_to_talk_down()
    assert await rig.controller.set_consent(True)
    rig.audio.feed(3)
    rig.controller.push_to_talk_up()
    assert rig.live.wire.count(("reconfigure", "Puck")) == 0  # not during the turn
    rig.live.emit(TurnComplete())
    await asyncio.sleep(0)  # the deferred reconfigure runs as a task
    await rig.controller.wait_for_state(S.READY, limit_s=2)
    await rig.controller.drain()
    assert rig.estimator.calls == []
    assert declares(rig.live.settings[-1], REPORT_EMOTION_TOOL_NAME)
    speak_turn(rig)
    await rig.controller.drain()
    assert len(rig.estimator.calls) == 1
    # The session's readings are recorded under the consent given during it.
    meta = rig.store.sessions[rig.controller.session_id or ""]
    assert meta.consent_version == CONSENT_VERSION


async def test_voice_change_reconnects_with_the_transcript_seed(rig: Rig) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    rig.live.emit(InputTranscript("how are you", finished=True))
    rig.live.emit(OutputTranscript("fine, thanks"))
    rig.live.emit(REPLY)
    rig.live.emit(TurnComplete())
    assert await rig.controller.change_voice("Kore")
    assert rig.live.wire[-1] == ("reconfigure", "Kore")
    # A fresh server session is seeded from the controller's settled turns.
    assert rig.live.history() == (("user", "how are you"), ("model", "fine, thanks"))
    assert rig.controller.state is S.READY
    assert rig.states()[-2:] == [S.CONNECTING, S.READY]
    assert not await rig.controller.change_voice("Kore")
    await rig.controller.drain()
    roles = [(t[1], t[2], t[3]) for t in rig.store.transcript]
    assert roles == [(1, "user", "how are you"), (1, "model", "fine, thanks")]
    # What was shown settles to exactly what was stored.
    (closed,) = rig.of(TurnClosed)
    assert (closed.user_text, closed.model_text) == ("how are you", "fine, thanks")


async def test_voice_change_during_a_reply_waits_for_the_turn_to_end(rig: Rig) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    rig.live.emit(REPLY)
    assert await rig.controller.change_voice("Kore")
    assert ("reconfigure", "Kore") not in rig.live.wire
    rig.live.emit(TurnComplete())
    for _ in range(10):
        await asyncio.sleep(0)
    assert await rig.controller.wait_for_state(S.READY, limit_s=2)
    assert ("reconfigure", "Kore") in rig.live.wire


async def test_a_dropped_link_shows_reconnecting_and_refuses_turns_until_back(
    consenting: Rig,
) -> None:
    r = consenting
    await r.controller.connect()
    speak_turn(r)
    r.live.emit(TurnComplete())
    r.live.emit(LinkStateChanged(LinkState.RECONNECTING, attempt=1, delay_s=0.5, reason="1011"))
    assert r.controller.state is S.RECONNECTING
    assert r.of(StateChanged)[-1].retry_in_s == 0.5  # the wait the window counts down
    assert not r.controller.push_to_talk_down()
    assert r.refused()[-1] == ("push_to_talk_down", "the connection is being restored")
    r.live.emit(AudioDropped(0.4, "link down"))
    r.live.emit(LinkStateChanged(LinkState.CONNECTED, resumed=True))
    assert r.controller.state is S.READY
    assert r.of(StateChanged)[-1].retry_in_s is None
    kinds = [n.kind for n in r.of(Notice)]
    assert kinds == [NoticeKind.RECONNECTING, NoticeKind.AUDIO_DROPPED, NoticeKind.RECONNECTED]
    await r.controller.drain()
    assert len(r.store.entries[r.controller.session_id or ""]) == 1  # the reading is kept


async def test_release_during_a_reconnect_still_ends_the_activity(rig: Rig) -> None:
    await rig.controller.connect()
    assert rig.controller.push_to_talk_down()
    rig.live.emit(LinkStateChanged(LinkState.RECONNECTING, attempt=1))
    assert rig.controller.push_to_talk_up()
    assert rig.live.kinds()[-1] == "activity_end"


async def test_a_failed_connection_is_an_error_state_with_a_notice() -> None:
    r = make_rig(live=FakeLive(connect_error=ConnectionRefusedError("refused")))
    assert not await r.controller.connect()
    assert r.controller.state is S.ERROR
    assert [n.kind for n in r.of(Notice)] == [NoticeKind.CONNECTION_FAILED]
    await r.controller.close()


async def test_a_rejected_key_is_reported_as_such(rig: Rig) -> None:
    await rig.controller.connect()
    rig.live.emit(SessionError("API key not valid", code=1008, auth=True))
    assert rig.controller.state is S.ERROR
    assert rig.of(Notice)[-1].kind is NoticeKind.INVALID_KEY


async def test_a_store_failure_is_a_notice_not_a_crash() -> None:
    r = make_rig(consent=True, store=FakeStore(fail=True))
    await r.controller.connect()
    speak_turn(r)
    await r.controller.drain()
    assert [n.kind for n in r.of(Notice)] == [NoticeKind.STORAGE]
    assert "disk full" in r.of(Notice)[0].message
    await r.controller.close()


async def test_text_input_is_a_turn(rig: Rig) -> None:
    await rig.controller.connect()
    assert not await rig.controller.send_text("   ")
    assert await rig.controller.send_text("hello there")
    assert rig.live.wire[-1] == ("text", "hello there")
    assert rig.controller.state is S.WAITING
    rig.live.emit(InputTranscript("hello there", finished=True))  # the server's echo
    rig.live.emit(OutputTranscript("Hi."))
    rig.live.emit(TurnComplete())
    await rig.controller.drain()
    assert rig.store.transcript[-2:] == [
        (rig.controller.session_id, 1, "user", "hello there"),
        (rig.controller.session_id, 1, "model", "Hi."),
    ]
    # Shown once: the typed words, not again as the server's transcription of them.
    lines = [(e.role, e.text) for e in rig.of(TranscriptLine)]
    assert lines == [("user", "hello there"), ("model", "Hi.")]
    (closed,) = rig.of(TurnClosed)
    assert (closed.turn, closed.outcome, closed.user_text) == (1, "completed", "hello there")


async def test_profile_change_reconfigures_and_unknown_profiles_are_refused(rig: Rig) -> None:
    await rig.controller.connect()
    assert not await rig.controller.change_profile("astrology")
    assert rig.refused()[-1][0] == "change_profile"
    assert await rig.controller.change_profile("tutor")
    assert rig.live.wire[-1][0] == "reconfigure"


async def test_hands_free_refuses_push_to_talk_and_reconnects_without_it(rig: Rig) -> None:
    await rig.controller.connect()
    assert rig.controller.set_hands_free(True)
    assert await rig.controller.wait_for_state(S.READY, limit_s=2)
    for _ in range(10):
        await asyncio.sleep(0)
    assert not rig.live.settings[-1].push_to_talk
    assert rig.live.settings[-1].vad_silence_ms == 500  # the saved pause, passed on
    assert not rig.controller.push_to_talk_down()
    assert rig.refused()[-1] == ("push_to_talk_down", "hands-free mode is on")


async def test_hands_free_tuning_is_stored_in_push_to_talk_and_applied_in_hands_free(
    rig: Rig,
) -> None:
    await rig.controller.connect()
    setups = len(rig.live.settings)
    # Push-to-talk: the server's end-of-turn detection is off, so nothing reconnects.
    assert await rig.controller.tune_hands_free("low", 900)
    assert len(rig.live.settings) == setups
    assert not await rig.controller.tune_hands_free("low", 900)
    assert rig.refused()[-1][0] == "tune_hands_free"
    # Switching to hands-free takes the stored tuning.
    assert rig.controller.set_hands_free(True)
    assert await rig.controller.wait_for_state(S.READY, limit_s=2)
    for _ in range(10):
        await asyncio.sleep(0)
    assert rig.live.settings[-1].vad_silence_ms == 900
    assert rig.live.settings[-1].vad_end_sensitivity != rig.live.settings[0].vad_end_sensitivity
    # Hands-free: applied at once on the same session (a reconfigure, not a new stack).
    setups = len(rig.live.settings)
    assert await rig.controller.tune_hands_free("low", 300)
    assert len(rig.live.settings) == setups + 1 and rig.live.wire[-1][0] == "reconfigure"
    assert rig.live.settings[-1].vad_silence_ms == 300
    assert rig.controller.state is S.READY


async def test_export_and_end_session(consenting: Rig) -> None:
    r = consenting
    await r.controller.connect()
    session_id = r.controller.session_id
    assert not await r.controller.export("/tmp/x.txt", fmt="xlsx")
    assert await r.controller.end_session()
    assert r.controller.state is S.OFFLINE and r.controller.session_id is None
    assert r.store.ended == [session_id]
    assert r.of(SessionEnded) == [SessionEnded(session_id or "")]
    assert await r.controller.export("/tmp/x.csv")  # the session just ended
    assert r.store.exports == [(session_id, "/tmp/x.csv", "csv")]


async def test_hands_free_streams_the_mic_and_lets_the_server_end_turns(consenting: Rig) -> None:
    r = consenting
    await r.controller.connect()
    assert r.controller.set_hands_free(True)
    assert r.audio.capturing
    assert r.audio.hands_free, "hands-free must cancel the echo, not hold the mic"
    r.audio.feed(4)
    r.live.emit(InputTranscript("hi"))
    assert r.controller.state is S.LISTENING
    r.live.emit(REPLY)
    assert r.controller.state is S.REPLYING
    r.live.emit(TurnComplete())
    assert r.controller.state is S.READY
    r.audio.feed(2)  # the next turn starts with the next frames
    await r.controller.drain()
    assert "activity_start" not in r.live.kinds()
    assert sum(1 for w in r.live.wire if w[0] == "audio") == 6
    assert [c[:2] for c in r.estimator.calls] == [(1, 4 * 320)]
    assert r.controller.set_hands_free(False)
    assert not r.audio.capturing and not r.audio.hands_free


async def test_a_turn_unanswered_when_the_link_drops_is_awaited_after_the_reconnect(
    rig: Rig,
) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    rig.live.emit(LinkStateChanged(LinkState.RECONNECTING, attempt=1))
    rig.live.emit(LinkStateChanged(LinkState.CONNECTED, resumed=True))
    assert rig.controller.state is S.WAITING  # the session replays the turn
    rig.live.emit(REPLY)
    rig.live.emit(TurnComplete())
    assert rig.controller.state is S.READY
    assert len(rig.audio.played) == 1


async def test_a_reply_cut_by_a_dropped_link_is_void_and_its_turn_waits_for_the_new_one(
    rig: Rig,
) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    rig.live.emit(OutputTranscript("Half a"))
    rig.live.emit(REPLY)
    rig.live.emit(LinkStateChanged(LinkState.RECONNECTING, attempt=1))
    assert rig.audio.flushes == 1  # the cut reply goes silent at once
    assert rig.of(ReplyRestarted) == [ReplyRestarted(1)]
    rig.live.emit(LinkStateChanged(LinkState.CONNECTED, resumed=True))
    assert rig.controller.state is S.WAITING  # the session sends the turn again
    rig.live.emit(OutputTranscript("A whole reply."))
    rig.live.emit(REPLY)
    rig.live.emit(TurnComplete())
    assert rig.controller.state is S.READY
    (closed,) = rig.of(TurnClosed)
    assert (closed.outcome, closed.model_text) == ("completed", "A whole reply.")


async def test_pressing_before_the_reply_starts_does_not_mute_the_next_reply(rig: Rig) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    assert rig.controller.state is S.WAITING
    speak_turn(rig)  # no reply audio yet: the server has nothing to interrupt
    rig.live.emit(REPLY)
    assert rig.audio.played == [(len(REPLY.data), 24000)]
    assert rig.controller.state is S.REPLYING


async def test_a_microphone_failure_ends_the_turn_with_a_mic_lost_notice(rig: Rig) -> None:
    await rig.controller.connect()
    assert rig.controller.push_to_talk_down()
    assert rig.audio.on_error is not None
    rig.audio.on_error("input device 'USB' stopped", "input")
    notice = rig.of(Notice)[-1]
    assert notice.kind is NoticeKind.MIC_LOST and "USB" in notice.message
    assert notice.action == "Choose another device"
    assert rig.controller.state is S.WAITING  # the turn was sent as it stood
    assert rig.live.kinds()[-1] == "activity_end"
    assert not rig.audio.capturing


async def test_a_speaker_failure_is_its_own_notice_and_keeps_the_turn(rig: Rig) -> None:
    await rig.controller.connect()
    assert rig.controller.push_to_talk_down()
    assert rig.audio.on_error is not None
    rig.audio.on_error("output device 'HDMI' stopped", "output")
    notice = rig.of(Notice)[-1]
    assert notice.kind is NoticeKind.SPEAKER_LOST
    assert notice.message == "The speaker stopped: output device 'HDMI' stopped"
    assert notice.action == "Choose another device"
    assert rig.controller.state is S.LISTENING
    assert rig.audio.capturing and "activity_end" not in rig.live.kinds()
    rig.audio.feed(3)
    assert rig.controller.push_to_talk_up()
    assert rig.live.kinds()[-2:] == ["audio", "activity_end"]


async def test_a_substituted_or_recovered_device_is_information_and_keeps_the_turn(
    rig: Rig,
) -> None:
    await rig.controller.connect()
    assert rig.controller.push_to_talk_down()
    assert rig.audio.on_info is not None
    rig.audio.on_info("input device 'USB' not found; using 'default'", "input")
    rig.audio.on_info("audio devices reopened", "input")
    notices = rig.of(Notice)[-2:]
    assert [n.kind for n in notices] == [NoticeKind.AUDIO_DEVICE] * 2
    assert notices[0].message == "input: input device 'USB' not found; using 'default'"
    assert rig.controller.state is S.LISTENING
    assert rig.audio.capturing and "activity_end" not in rig.live.kinds()


class _RecordingEstimator(FakeEstimator):
    def __init__(self, fail: Exception | None = None) -> None:
        super().__init__()
        self.pcm: list[Any] = []
        self.fail = fail

    def estimate(
        self, pcm16: Any, rate: int, *, turn: int, t_start_s: float, t_end_s: float
    ) -> EmotionReading | None:
        self.pcm.append(pcm16.copy())
        if self.fail is not None:
            raise self.fail
        return super().estimate(pcm16, rate, turn=turn, t_start_s=t_start_s, t_end_s=t_end_s)


def _rig_with(estimator: FakeEstimator, *, consent: bool = True) -> Rig:
    r = make_rig(consent=consent)
    r.controller._estimator_factory = lambda: estimator  # same rig, this estimator
    r.estimator = estimator
    return r


async def test_a_quiet_hands_free_turn_keeps_only_the_newest_window_for_the_estimator() -> None:
    from emodesk.conversation.turn import ESTIMATOR_WINDOW_S

    estimator = _RecordingEstimator()
    r = _rig_with(estimator)
    await r.controller.connect()
    assert r.controller.set_hands_free(True)
    window_frames = int(ESTIMATOR_WINDOW_S / 0.02)
    r.audio.feed(200, value=7)  # the oldest 4 s: dropped
    r.clock.advance(4.0)
    r.audio.feed(window_frames, value=1)  # the newest 30 s: kept
    r.clock.advance(ESTIMATOR_WINDOW_S)
    r.live.emit(REPLY)  # the server heard the turn end
    await r.controller.drain()
    (pcm,) = estimator.pcm
    assert pcm.size == ESTIMATOR_WINDOW_S * 16000 and set(pcm.tolist()) == {1}
    (turn, _, t_start, t_end) = estimator.calls[0]
    assert turn == 1 and t_end - t_start == pytest.approx(ESTIMATOR_WINDOW_S)
    await r.controller.close()


async def test_hands_free_estimates_from_the_speech_the_voice_detector_found() -> None:
    """A clear 1.35 s phrase from the stream's first sample, frame by frame: one estimate,
    of the phrase and not the room after it; steady noise and a beep that the server took
    for a turn: no estimate."""
    import numpy as np

    from emodesk.dsp.vad import LiveSpeech
    from tests.support.speech import Voice, render, trimmed

    def speak(*parts: np.ndarray) -> None:
        pcm = np.concatenate(parts).astype(np.int16)
        assert r.audio.on_frame is not None and r.audio.capturing
        for i in range(0, pcm.size, 320):
            r.audio.on_frame(pcm[i : i + 320].tobytes())

    estimator = _RecordingEstimator()
    r = _rig_with(estimator)
    r.controller._speech_factory = LiveSpeech  # as the stack builds it
    await r.controller.connect()
    assert r.controller.set_hands_free(True)
    rng = np.random.default_rng(6)
    phrase = trimmed(render("Are you all alone now?", Voice("flite", "slt")))
    speak(phrase, rng.normal(0, 30, 12000))  # then 0.75 s of a quiet room
    r.live.emit(InputTranscript("Are you all alone now?"))
    r.live.emit(REPLY)
    r.live.emit(TurnComplete())
    await r.controller.drain()
    (pcm,) = estimator.pcm
    assert 0.85 * phrase.size <= pcm.size <= phrase.size + 0.3 * 16000
    t = np.arange(16000) / 16000
    beep = 8000 * np.sin(2 * np.pi * 1000 * t)
    hiss = rng.normal(0, 1, 32000) * 32768 * 10 ** (-35 / 20)
    speak(hiss, beep, hiss)
    r.live.emit(REPLY)  # the server heard a turn in it
    r.live.emit(TurnComplete())
    await r.controller.drain()
    assert len(estimator.pcm) == 1
    assert [e.turn for e in r.of(ReadingAdded)] == [1]
    await r.controller.close()


async def test_an_estimator_failure_has_its_own_notice_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    estimator = _RecordingEstimator(fail=ValueError("features out of range"))
    r = _rig_with(estimator)
    await r.controller.connect()
    speak_turn(r)
    await r.controller.drain()
    (notice,) = r.of(Notice)
    assert notice.kind is NoticeKind.ESTIMATION
    assert notice.message == ("How turn 1 sounded could not be estimated: features out of range")
    assert "the acoustic estimate of turn 1 failed" in caplog.text
    assert "features out of range" in caplog.text  # with the traceback
    r.live.emit(TurnComplete())
    assert r.controller.state is S.READY
    estimator.fail = None
    speak_turn(r)
    await r.controller.drain()
    assert [e.turn for e in r.of(ReadingAdded)] == [2]
    await r.controller.close()


async def test_a_new_session_is_a_new_server_conversation_but_a_reconnect_resumes(
    rig: Rig,
) -> None:
    assert await rig.controller.connect()
    assert rig.live.forget_calls == 1
    # Disconnect and connect again within the same stored session: resume, not forget.
    assert await rig.controller.disconnect()
    assert await rig.controller.connect()
    assert rig.live.forget_calls == 1
    # After the session ends, the next connect starts a new conversation.
    assert await rig.controller.end_session()
    assert await rig.controller.connect()
    assert rig.live.forget_calls == 2


async def test_the_session_report_summarises_this_sessions_timeline(consenting: Rig) -> None:
    r = consenting
    assert r.controller.session_report() is None  # no session yet
    await r.controller.connect()
    speak_turn(r)
    r.live.emit(TurnComplete())
    await r.controller.drain()
    report = r.controller.session_report()
    assert report is not None
    assert f"Session: {r.controller.session_id}" in report
    assert "Turns with estimates: 1" in report and "not a diagnosis" in report


async def test_an_export_that_cannot_be_written_says_so_once() -> None:
    class FullDisk(FakeStore):
        def export_session(self, session_id: str, path: str, fmt: str = "csv") -> None:
            raise OSError(f"Could not write {path}: the disk is full (no space left on device)")

    r = make_rig(store=FullDisk())
    await r.controller.connect()
    assert not await r.controller.export("/x/t.csv")
    said = "Could not write /x/t.csv: the disk is full (no space left on device)"
    assert [n.message for n in r.of(Notice)] == [said]
    assert r.refused() == [("export", said)]
    await r.controller.close()


async def test_a_trend_change_reaches_the_model_once_with_its_next_emotion_report() -> None:
    r = make_rig(consent=True, profile="support")
    await r.controller.connect()
    answers = []
    for _ in range(4):  # the acoustic double says angry every turn; so does the model
        speak_turn(r)
        await r.controller.drain()
        answers.append(await model_reports(r, "angry", "high"))
        await r.controller.drain()
        r.live.emit(TurnComplete())
    notes = [a.get("note", "") for a in answers]
    # Turn 3's acoustic reading (at release) makes the trend persistent and escalates;
    # the model hears both with its report at the start of that reply, once, and never
    # again while nothing changes.
    told = [i for i, n in enumerate(notes, 1) if "upset for several turns" in n]
    assert len(told) == 1 and "offer a human agent" in notes[told[0] - 1]
    assert sum("Note from the app" in n for n in notes) == 1
    await r.controller.close()


async def test_no_note_reaches_the_model_after_consent_is_revoked() -> None:
    r = make_rig(consent=True, profile="support")
    await r.controller.connect()
    await angry_turns(r, 2)
    speak_turn(r)
    await r.controller.drain()
    assert r.controller._pending_note  # the change waits for the model's next report
    assert await r.controller.set_consent(False)
    stored = len(r.store.entries[r.controller.session_id or ""])
    # Until the deferred reconfigure the server may still call it: a plain answer, no
    # note, and nothing emotional kept.
    assert await model_reports(r, "angry", "high") == {"result": "ok"}
    await r.controller.drain()
    assert len(r.store.entries[r.controller.session_id or ""]) == stored
    await r.controller.close()


async def test_the_tutor_tells_the_model_its_next_step_from_the_report() -> None:
    r = make_rig(consent=True, profile="tutor")
    await r.controller.connect()
    speak_turn(r)
    confused = await model_reports(r, "anxious", "high")
    assert "explain the same idea another way" in confused["note"]
    r.live.emit(TurnComplete())
    speak_turn(r)
    bored = await model_reports(r, "sad", "low")
    assert "interactive exercise" in bored["note"]
    r.live.emit(TurnComplete())
    speak_turn(r)
    understood = await model_reports(r, "neutral", "medium")
    assert "next_topic" in understood["note"]
    await r.controller.close()


async def test_an_unknown_function_gets_a_clear_error_and_the_turn_goes_on(rig: Rig) -> None:
    await rig.controller.connect()
    speak_turn(rig)
    answer = await rig.live.call_tool("launch_rocket", {"when": "now"})
    assert answer == {"error": "unknown function 'launch_rocket'; the functions here: none"}
    rig.live.emit(REPLY)
    rig.live.emit(TurnComplete())
    assert rig.controller.state is S.READY


async def test_every_reconnect_try_tells_its_own_wait(rig: Rig) -> None:
    await rig.controller.connect()
    rig.live.emit(LinkStateChanged(LinkState.RECONNECTING, attempt=1, delay_s=0.5))
    rig.live.emit(LinkStateChanged(LinkState.RECONNECTING, attempt=2, delay_s=1.5))
    waits = [e.retry_in_s for e in rig.of(StateChanged) if e.state is S.RECONNECTING]
    assert waits == [0.5, 1.5]
    assert len([n for n in rig.of(Notice) if n.kind is NoticeKind.RECONNECTING]) == 1


async def test_the_advice_follows_a_profile_change_at_once() -> None:
    r = make_rig(consent=True, profile="general")
    await r.controller.connect()
    await angry_turns(r, 3)
    assert r.of(TrendChanged)[-1].advice == "Check in with the user"
    assert await r.controller.change_profile("support")
    last = r.of(TrendChanged)[-1]
    assert last.escalate and last.advice == "Offer a human agent"
    escalations = [n for n in r.of(Notice) if n.kind is NoticeKind.ESCALATION]
    assert escalations[-1].action == "Offer a human agent"
    await r.controller.close()
