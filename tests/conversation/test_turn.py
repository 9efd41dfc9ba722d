"""The turn object alone: its phases, its named transitions and how it closes."""

from __future__ import annotations

import pytest

from emodesk.conversation.api import TurnOutcome
from emodesk.conversation.turn import (
    ESTIMATOR_WINDOW_S,
    EstimatorAudio,
    Phase,
    Turn,
    TurnKind,
)


def ptt(number: int = 1, started: float = 10.0) -> Turn:
    return Turn(number, TurnKind.PUSH_TO_TALK, started, consent=True)


def test_a_spoken_turn_goes_capturing_sent_answering_closed() -> None:
    turn = ptt()
    assert turn.phase is Phase.CAPTURING and not turn.awaiting_reply
    assert turn.released_at(11.0) and turn.phase is Phase.SENT and turn.released == 11.0
    assert not turn.released_at(12.0)  # once only
    assert turn.reply_content(11.5) and turn.phase is Phase.ANSWERING
    assert turn.audio_received(0.04, 11.6) and turn.first_audio == 11.6
    assert not turn.audio_received(0.04, 11.7)  # not the first any more
    assert turn.close(TurnOutcome.COMPLETED)
    assert turn.closed and turn.outcome is TurnOutcome.COMPLETED and turn.reason == ""
    assert not turn.close(TurnOutcome.FAILED, "late")  # a closed turn stays as it closed
    assert turn.outcome is TurnOutcome.COMPLETED


def test_a_typed_turn_starts_sent() -> None:
    turn = Turn(1, TurnKind.TEXT, 5.0, consent=False)
    assert turn.phase is Phase.SENT and turn.released == 5.0 and turn.awaiting_reply


def test_hands_free_reply_content_means_the_server_heard_the_end() -> None:
    turn = Turn(1, TurnKind.HANDS_FREE, 5.0, consent=False)
    turn.add_reply_text("Hi", 6.0)
    assert turn.phase is Phase.ANSWERING and turn.released == 6.0


def test_a_lost_reply_is_void_and_the_turn_waits_again() -> None:
    turn = ptt()
    turn.released_at(11.0)
    turn.add_reply_text("Half a", 11.2)
    turn.audio_received(0.5, 11.3)
    assert turn.reply_lost(12.0)
    assert turn.phase is Phase.SENT and turn.model_text == "" and turn.first_audio is None
    assert not turn.reply_lost(12.5)  # nothing to void now
    turn.add_reply_text("A whole reply.", 13.0)
    assert turn.model_text == "A whole reply."


def test_an_interrupted_reply_keeps_only_the_text_of_what_was_played() -> None:
    turn = ptt()
    turn.released_at(11.0)
    turn.add_reply_text("One", 11.1)  # at 0.0 s of reply audio
    turn.audio_received(1.0, 11.2)
    turn.add_reply_text(" two", 11.3)  # at 1.0 s
    turn.audio_received(1.0, 11.4)
    turn.add_reply_text(" three", 11.5)  # at 2.0 s
    turn.audio_received(1.0, 11.6)  # 3.0 s received
    turn.interrupted(unplayed_s=1.5)  # 1.5 s heard
    assert turn.model_text == "One two"
    turn.close(TurnOutcome.INTERRUPTED)
    assert turn.model_text == "One two"


def test_a_failed_turn_keeps_its_reason_and_others_have_none() -> None:
    turn = ptt()
    turn.close(TurnOutcome.FAILED, "no reply for 30 s")
    assert turn.reason == "no reply for 30 s"
    other = ptt(2)
    other.close(TurnOutcome.INTERRUPTED, "ignored")
    assert other.reason == ""


def test_a_stall_is_counted_from_the_newest_progress_while_a_reply_is_owed() -> None:
    turn = ptt(started=0.0)
    assert not turn.stalled(100.0, 30.0)  # still being spoken: nothing is owed
    turn.released_at(1.0)
    assert not turn.stalled(30.0, 30.0) and turn.stalled(31.5, 30.0)
    turn.reply_content(31.0)
    assert not turn.stalled(60.0, 30.0) and turn.stalled(61.5, 30.0)
    turn.close(TurnOutcome.FAILED, "stalled")
    assert not turn.stalled(1000.0, 30.0)


def test_the_estimator_window_keeps_the_newest_audio() -> None:
    audio = EstimatorAudio()
    frame = b"\x01\x00" * 320  # 20 ms
    for _ in range(int(ESTIMATOR_WINDOW_S / 0.02) + 50):
        audio.keep(frame)
    assert audio.seconds == pytest.approx(ESTIMATOR_WINDOW_S)
    pcm, trimmed = audio.take()
    assert trimmed and len(pcm) == ESTIMATOR_WINDOW_S * 16_000 * 2  # 16 kHz PCM16
    assert not audio and audio.seconds == 0.0


def test_closing_drops_the_kept_audio() -> None:
    turn = ptt()
    turn.audio.keep(b"\x00\x00" * 160)
    turn.close(TurnOutcome.FAILED, "x")
    assert not turn.audio
