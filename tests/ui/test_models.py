from __future__ import annotations

import numpy as np

from emodesk.conversation.api import ReadingAdded, Role, TurnOutcome
from emodesk.dsp.ringbuffer import RingBuffer
from emodesk.ui.scope import BINS, ScopeView, peak_envelope
from emodesk.ui.timeline import VISIBLE_S, TimelineData, describe, row_of, visible_window
from emodesk.ui.transcript import TranscriptModel


def reading(turn: int, source: str = "model", start: float = 0.0, **kw: object) -> ReadingAdded:
    values: dict[str, object] = dict(
        turn=turn, source=source, emotion="happy", confidence=0.8, energy_level="high",
        t_start_s=start, t_end_s=start + 2.0, arousal=None, valence=None,
        trend="stable", escalate=False,
    )  # fmt: skip
    values.update(kw)
    return ReadingAdded(**values)  # type: ignore[arg-type]


def test_transcript_pieces_extend_a_row_and_the_closed_turn_replaces_them(qapp: object) -> None:
    model = TranscriptModel()
    model.add_piece(Role.USER, "Hel", 1)
    model.add_piece(Role.MODEL, "Hi", 1)  # the reply starts before the user's text ends
    model.add_piece(Role.USER, "lo th", 1)
    model.add_piece(Role.MODEL, " you", 1)
    assert [(e.role, e.text, e.final) for e in model.entries] == [
        ("user", "Hello th", False),
        ("model", "Hi you", False),
    ]
    model.settle(1, TurnOutcome.COMPLETED, "", "Hello there", "Hi you")
    assert [(e.role, e.text, e.final) for e in model.entries] == [
        ("user", "Hello there", True),
        ("model", "Hi you", True),
    ]
    model.add_piece(Role.USER, "Again", 2)
    assert model.rowCount() == 3
    assert model.data(model.row_index(2)) == "You\nAgain"


def test_transcript_makes_no_row_for_an_empty_side_of_a_closed_turn(qapp: object) -> None:
    model = TranscriptModel()
    model.settle(3, TurnOutcome.COMPLETED, "", "", "")
    assert model.rowCount() == 0


def test_timeline_finds_the_reading_under_the_pointer_by_time_and_row() -> None:
    data = TimelineData()
    data.add(reading(1, "model", 0.0))
    data.add(reading(1, "acoustic", 0.0, emotion="sad"))
    data.add(reading(2, "model", 5.0, escalate=True, trend="worsening"))
    top = data.at(1.0, row_of("model"))
    assert top is not None and (top.source, top.turn) == ("model", 1)
    hit = data.at(1.0, row_of("acoustic"))
    assert hit is not None and hit.emotion == "sad"
    assert data.at(3.5, row_of("model")) is None  # between turns
    assert data.at(6.0, row_of("model")).turn == 2  # type: ignore[union-attr]
    assert data.trend.trend == "worsening" and data.trend.escalate
    assert "escalation" in describe(data.readings[-1])


def test_timeline_window_pages_forward_and_only_visible_readings_are_drawn() -> None:
    assert visible_window(10.0) == (0.0, VISIBLE_S)
    start, end = visible_window(200.0)
    assert start < 200.0 < end and end - start == VISIBLE_S
    data = TimelineData()
    for turn in range(2000):  # a long session: one reading every 3 s
        data.add(reading(turn, start=turn * 3.0))
    shown = data.visible(start, end)
    assert 0 < len(shown) <= VISIBLE_S / 3 + 2
    assert all(r.t_end_s >= start and r.t_start_s <= end for r in shown)


def test_peak_envelope_keeps_a_one_sample_click() -> None:
    samples = np.zeros(96000, dtype=np.int16)
    samples[12345] = 32000
    env = peak_envelope(samples, BINS)
    assert env.shape == (2 * BINS,)
    assert env.max() > 0.97
    assert env.min() == 0.0


def test_scope_redraws_only_when_new_samples_arrived_or_time_moved(qtbot: object) -> None:
    scope = ScopeView()
    qtbot.addWidget(scope)  # type: ignore[attr-defined]
    mic, reply = RingBuffer(16000 * 10), RingBuffer(24000 * 10)
    scope.attach(mic, reply)
    scope.tick(100.0)
    drawn = scope.frames_drawn
    scope.tick(100.0)
    assert scope.frames_drawn == drawn  # nothing new: no redraw
    mic.write((np.sin(np.arange(1600) / 5) * 20000).astype(np.int16))
    scope.tick(100.0)
    assert scope.frames_drawn == drawn + 1
    assert scope.mic_meter.rms_db > -10
    assert scope.reply_meter.rms_db <= -60
    # Once everything has scrolled out flat, an idle window draws nothing at all.
    scope.tick(200.0)
    idle = scope.frames_drawn
    for t in (201.0, 202.0, 300.0):
        scope.tick(t)
    assert scope.frames_drawn == idle


def test_scope_draws_pauses_in_writing_as_silence(qtbot: object) -> None:
    """The mic ring is written only while capturing: a 3 s pause between two bursts must
    show as 3 s of flat line between them, so mic and reply line up on one clock."""
    scope = ScopeView()
    qtbot.addWidget(scope)  # type: ignore[attr-defined]
    mic = RingBuffer(16000 * 10)
    scope.attach(mic, None)
    loud = np.full(8000, 20000, dtype=np.int16)  # 0.5 s
    mic.write(loud)
    scope.tick(10.0)
    mic.write(loud)  # 3 s later
    scope.tick(13.0)
    _, envelope = scope.mic.curve.getData()
    top = envelope[1::2]  # max per bin; bins of WINDOW_S / BINS seconds, newest last
    seconds = np.linspace(-6.0, 0.0, BINS)
    assert top[seconds > -0.45].min() > 0.5  # the new burst, at the right edge
    assert top[(seconds < -0.6) & (seconds > -3.4)].max() == 0.0  # the pause, flat
    assert top[(seconds < -3.6) & (seconds > -3.9)].min() > 0.5  # the first burst


def test_scope_does_not_redraw_a_flat_line_for_an_open_silent_microphone(qtbot: object) -> None:
    scope = ScopeView()
    qtbot.addWidget(scope)  # type: ignore[attr-defined]
    mic = RingBuffer(16000 * 10)
    scope.attach(mic, None)
    mic.write(np.full(320, 20000, dtype=np.int16))
    scope.tick(0.0)
    drawn = scope.frames_drawn
    for i in range(1, 400):  # 8 s of 20 ms frames of near-silence from an open mic
        mic.write(np.full(320, 3, dtype=np.int16))
        scope.tick(i * 0.02)
    # It kept drawing while the loud frame scrolled out, then stopped: a flat line.
    assert drawn < scope.frames_drawn < drawn + 400
    flat_from = scope.frames_drawn
    for i in range(400, 450):
        mic.write(np.full(320, 3, dtype=np.int16))
        scope.tick(i * 0.02)
    assert scope.frames_drawn == flat_from
    mic.write(np.full(320, 20000, dtype=np.int16))  # speech: drawn at once
    scope.tick(9.02)
    assert scope.frames_drawn == flat_from + 1


class CountingRing(RingBuffer):
    """A ring that records how many samples each read asked for."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.reads: list[int] = []

    def latest(self, n: int) -> np.ndarray:  # type: ignore[type-arg]
        self.reads.append(n)
        return super().latest(n)


def test_a_flat_trace_reads_only_the_new_samples_while_the_mic_stays_quiet(
    qtbot: object,
) -> None:
    scope = ScopeView()
    qtbot.addWidget(scope)  # type: ignore[attr-defined]
    mic = CountingRing(16000 * 10)
    scope.attach(mic, None)
    for i in range(400):  # quiet frames until the trace is flat on screen
        mic.write(np.full(320, 3, dtype=np.int16))
        scope.tick(i * 0.02)
    assert scope.mic._flat
    window = scope.mic.window_samples
    mic.reads.clear()
    for i in range(400, 430):
        mic.write(np.full(320, 3, dtype=np.int16))
        scope.tick(i * 0.02)
    assert mic.reads and max(mic.reads) < window  # never the whole window
    mic.write(np.full(320, 20000, dtype=np.int16))
    drawn = scope.frames_drawn
    scope.tick(8.62)
    assert scope.frames_drawn == drawn + 1 and not scope.mic._flat
    assert scope.mic_meter.peak_db > -10


def test_the_frame_clock_slows_down_when_nothing_draws_and_speeds_up_when_something_does(
    qapp: object,
) -> None:
    from emodesk.ui.frameclock import IDLE_AFTER_FRAMES, FrameClock

    clock = FrameClock()
    drawing = [False]
    clock.add(lambda: drawing[0])
    clock.add(lambda: None)  # a subscriber that never draws does not keep it awake
    clock.start()
    try:
        for _ in range(IDLE_AFTER_FRAMES - 1):
            clock.tick()
        assert not clock.idle
        clock.tick()
        assert clock.idle
        drawing[0] = True
        clock.tick()
        assert not clock.idle
    finally:
        clock.stop()


def test_the_escalation_marker_goes_where_it_began_and_where_it_eased() -> None:
    data = TimelineData()
    states = [False, False, True, True, True, False, False, True]  # turn by turn
    for turn, on in enumerate(states, 1):
        data.add(reading(turn, "model", 3.0 * turn, escalate=on, emotion="neutral"))
        data.add(reading(turn, "acoustic", 3.0 * turn, escalate=on, emotion="neutral"))
    marks = [(r.turn, r.source, on) for r, on in data.escalation_changes()]
    # One mark per change, on the first reading that carried it; none on the rest.
    assert marks == [(3, "model", True), (6, "model", False), (8, "model", True)]


def test_the_trend_header_says_which_turns_it_judges(qapp: object) -> None:
    from emodesk.ui.timeline import TimelineView

    view = TimelineView()
    view.enabled_for_emotion = True
    for turn in range(1, 9):
        view.add_reading(reading(turn, "model", 3.0 * turn, trend="worsening"))
    view.set_trend("worsening", False, "Slow down and check in")
    view.tick()
    assert view.trend_label.text().startswith("Trend, turns 3–8: worsening")
