"""The playout buffer on generated signals: the adaptive target (follows the measured
jitter, grows on an underrun, shrinks slowly, stays under the ceiling), order,
underruns without a click, flush."""

from __future__ import annotations

import time

import numpy as np
import pytest

from emodesk.audio import playout
from emodesk.audio.playout import PlayoutBuffer

RATE = 24000


def ramp(n: int, start: int = 0) -> np.ndarray:
    return ((np.arange(start, start + n) % 30000) + 1).astype(np.int16)


def test_plays_everything_in_order_once_the_target_wait_is_over() -> None:
    buf = PlayoutBuffer(RATE, 60, adaptive=False)
    out = np.empty(240, dtype=np.int16)
    t0 = time.monotonic()
    buf.write(ramp(960))
    buf.write(ramp(960, 960))
    assert buf.read_into(out) == 0 and not out.any()  # not waited 60 ms yet
    played = []
    while buf.depth:
        got = buf.read_into(out)
        if got:
            assert time.monotonic() - t0 >= 0.06
        played.append(out[:got].copy())
    assert np.array_equal(np.concatenate(played), ramp(1920))
    assert buf.underruns == 0


def test_short_reply_starts_after_waiting_the_target_time() -> None:
    buf = PlayoutBuffer(RATE, 20, adaptive=False)
    buf.write(ramp(100))
    out = np.empty(50, dtype=np.int16)
    assert buf.read_into(out) == 0
    deadline = time.monotonic() + 2.0
    while buf.read_into(out) == 0:
        assert time.monotonic() < deadline, "a short reply never started"
    assert np.array_equal(out, ramp(50))


def test_gap_mid_reply_is_an_underrun_played_as_faded_silence() -> None:
    buf = PlayoutBuffer(RATE, 0, fade_ms=2)
    loud = np.full(300, 20000, dtype=np.int16)
    buf.write(loud)
    out = np.empty(480, dtype=np.int16)
    assert buf.read_into(out) == 300
    assert not out[300:].any(), "missing audio must be silence"
    # No click: the last samples before the gap ramp down to near zero.
    assert abs(int(out[299])) < 20000 * 0.05
    assert np.all(np.diff(np.abs(out[252:300].astype(int))) <= 0)
    buf.write(loud)  # audio arrives again soon after: that was a gap, not the end
    assert buf.underruns == 1
    assert buf.read_into(out) == 300
    assert abs(int(out[0])) < 20000 * 0.05, "resuming after a gap fades in"


def test_flush_drops_everything_and_is_not_an_underrun() -> None:
    buf = PlayoutBuffer(RATE, 0)
    buf.write(ramp(4800))
    out = np.empty(240, dtype=np.int16)
    buf.read_into(out)
    assert buf.clear() == 4800 - 240
    assert buf.read_into(out) == 0 and not out.any()
    buf.write(ramp(10))
    assert buf.underruns == 0


def test_oldest_audio_is_dropped_past_the_limit() -> None:
    buf = PlayoutBuffer(RATE, 0, max_seconds=0.01)  # 240 samples
    buf.write(ramp(200))
    buf.write(ramp(200, 200))
    assert buf.depth == 240 and buf.dropped_samples == 160
    out = np.empty(240, dtype=np.int16)
    buf.read_into(out)
    assert np.array_equal(out, ramp(240, 160))


@pytest.mark.parametrize(
    "kwargs",
    [{"rate": 0}, {"rate": RATE, "ceiling_ms": -1}, {"rate": RATE, "period_ms": -1},
     {"rate": RATE, "decay_s": 0}, {"rate": RATE, "prior_decay_s": 0}],
)  # fmt: skip
def test_bad_arguments_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PlayoutBuffer(**kwargs)  # type: ignore[arg-type]


# ---- the adaptive target -------------------------------------------------------------


def paced(buf: PlayoutBuffer, chunks: int, chunk_ms: float, late_ms: list[float]) -> None:
    """Writes a reply of `chunks` chunks as a link pacing them in real time would, chunk i
    arriving `late_ms[i % len]` after its media time (no sleeping: arrival times given)."""
    n = round(RATE * chunk_ms / 1000)
    t0 = time.monotonic()
    for i in range(chunks):
        late = late_ms[i % len(late_ms)] / 1000
        buf.write(ramp(n, i * n), arrived=t0 + i * chunk_ms / 1000 + late)


def test_starts_at_the_assumed_jitter_which_fades_within_seconds_of_replies() -> None:
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=10, prior_decay_s=1)
    assert buf.target_ms == pytest.approx(10)  # a block on time needs no wait of its own
    paced(buf, 25, 40, [0.0])  # one second of reply, every chunk on time
    assert buf.jitter_ms == pytest.approx(5, abs=0.3)  # half the assumption is left
    measured = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=10, prior_decay_s=1)
    paced(measured, 25, 40, [0.0, 8.0])  # what is measured fades at its own pace
    assert measured.jitter_ms == pytest.approx(8 * 0.5 ** (1 / 20), abs=0.3)


def test_on_a_steady_link_the_target_falls_toward_nothing() -> None:
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=10, decay_s=5)
    paced(buf, 500, 40, [0.0])  # 20 s of reply audio, every chunk on time
    assert 0 <= buf.target_ms < 1


def test_the_target_follows_the_measured_jitter() -> None:
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0)
    paced(buf, 20, 40, [0.0, 15.0, 3.0, 8.0])  # chunks up to 15 ms late
    assert buf.jitter_ms == pytest.approx(15, abs=0.5)
    assert buf.target_ms == pytest.approx(15, abs=0.5)


def test_chunks_ahead_of_time_are_not_jitter() -> None:
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0)
    n = 960
    t0 = time.monotonic()
    for i in range(50):  # a server sending faster than real time: 2 s in 0.1 s
        buf.write(ramp(n, i * n), arrived=t0 + i * 0.002)
    assert buf.jitter_ms == 0 and buf.target_ms == 0


def test_grows_at_once_on_an_underrun_and_on_a_late_chunk() -> None:
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0)
    before = buf.target_ms
    buf.write(np.full(240, 1000, np.int16))
    out = np.empty(480, dtype=np.int16)
    deadline = time.monotonic() + 1
    while buf.read_into(out) == 0:
        assert time.monotonic() < deadline
    buf.write(np.full(240, 1000, np.int16))  # too late: the buffer ran dry
    assert buf.underruns == 1
    assert buf.target_ms >= before + 10  # one more device period
    buf2 = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0)
    paced(buf2, 3, 40, [0.0, 0.0, 30.0])
    assert buf2.target_ms == pytest.approx(30, abs=0.5)  # grown by the lateness at once


def test_shrinks_slowly() -> None:
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0, decay_s=20)
    paced(buf, 3, 40, [0.0, 0.0, 30.0])
    peak = buf.target_ms
    paced(buf, 25, 40, [0.0])  # one further second of steady audio
    assert peak - 2 < buf.target_ms < peak  # lower, but by little: a half-life is 20 s
    paced(buf, 500, 40, [0.0])  # 20 s more: about half the lateness is left
    assert buf.target_ms == pytest.approx(15 * 0.95, abs=2)


def test_never_exceeds_the_ceiling() -> None:
    buf = PlayoutBuffer(RATE, 45, period_ms=10, initial_jitter_ms=0)
    paced(buf, 10, 40, [0.0, 200.0])  # very late chunks
    for _ in range(5):
        buf._boost_s += 0.01  # and underruns on top
    assert buf.target_ms == 45
    low = PlayoutBuffer(RATE, 5, period_ms=10)  # a ceiling below the assumed jitter wins
    assert low.target_ms == 5
    fixed = PlayoutBuffer(RATE, 60, adaptive=False)
    paced(fixed, 10, 40, [0.0])
    assert fixed.target_ms == 60


def test_a_reply_starts_after_the_adaptive_target_not_the_ceiling() -> None:
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=10)
    out = np.empty(240, dtype=np.int16)
    t0 = time.monotonic()
    buf.write(ramp(960))
    while buf.read_into(out) == 0:
        time.sleep(0.001)
    waited = time.monotonic() - t0
    assert 0.009 <= waited < 0.04  # a 10 ms target (less its fading), under the 60 ms ceiling


def test_no_click_where_the_target_changes_across_an_underrun() -> None:
    """A sine played, a gap (underrun: the target grows), then the sine again: the
    output's sample-to-sample step never exceeds the sine's own steepest step."""
    buf = PlayoutBuffer(RATE, 500, period_ms=10, initial_jitter_ms=0, fade_ms=2)
    amp, freq = 20000, 440
    sine = (amp * np.sin(2 * np.pi * freq * np.arange(RATE) / RATE)).astype(np.int16)
    max_step = 2 * np.pi * freq / RATE * amp + 2
    out = np.empty(240, dtype=np.int16)
    played: list[np.ndarray] = []
    buf.write(sine[:2400])  # 100 ms of audio
    deadline = time.monotonic() + 1
    while not buf.playing:
        assert time.monotonic() < deadline
        buf.read_into(out)
    played.append(out.copy())
    while buf.playing:
        buf.read_into(out)
        played.append(out.copy())
    for _ in range(4):  # 40 ms dry: silence
        buf.read_into(out)
        played.append(out.copy())
    target_before = buf.target_ms
    buf.write(sine[2400:4800])  # back within the gap window
    assert buf.underruns == 1 and buf.target_ms > target_before
    deadline = time.monotonic() + 1
    while buf.depth:
        assert time.monotonic() < deadline
        buf.read_into(out)
        played.append(out.copy())
    audio = np.concatenate(played).astype(np.int64)
    assert np.count_nonzero(audio) > 4000
    assert np.abs(np.diff(audio)).max() <= max_step


def test_a_device_taking_audio_ahead_of_real_time_raises_the_target() -> None:
    """Callbacks held back and then catching up in a burst take audio faster than real
    time: the next reply must wait that much longer to last through such a burst."""
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0)
    assert buf.device_lead_ms == 10
    buf.write(ramp(2400))
    out = np.empty(240, dtype=np.int16)
    deadline = time.monotonic() + 1
    while buf.read_into(out) == 0:
        assert time.monotonic() < deadline
    for _ in range(3):  # 30 ms more at once: 40 ms taken in no time
        buf.read_into(out)
    assert buf.device_lead_ms == pytest.approx(40, abs=2)
    assert buf.target_ms == pytest.approx(30, abs=2)  # the lead beyond its own block


def test_a_device_queue_kept_ahead_by_design_does_not_raise_the_target() -> None:
    """A sound server's queue, kept 40 ms ahead, takes audio ahead of real time on
    purpose: only a lead beyond it would be a burst to wait for."""
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0)
    buf.set_device_queue(50)
    assert buf.device_lead_ms == 50
    buf.write(ramp(2400))
    out = np.empty(240, dtype=np.int16)
    for _ in range(5):  # 50 ms at once, as a kick into an empty queue takes it
        buf.read_into(out)
    assert buf.device_lead_ms == pytest.approx(50, abs=2)
    assert buf.target_ms == pytest.approx(0, abs=1)


def test_starts_in_says_when_a_read_would_start_playback() -> None:
    """For an output read only when it has room (the sound server's queue), not at a
    steady pace: the engine reads again at that moment instead of a block later."""
    buf = PlayoutBuffer(RATE, 60, adaptive=False)
    assert buf.starts_in_s() is None  # nothing buffered
    buf.write(ramp(960))
    waits = buf.starts_in_s()
    assert waits is not None and 0.05 < waits <= 0.06
    out = np.empty(240, dtype=np.int16)
    assert buf.read_into(out) == 0
    time.sleep(waits)
    assert buf.starts_in_s() == 0.0
    assert buf.read_into(out) == 240, "the read at that moment starts playback"
    assert buf.starts_in_s() is None  # playing


def test_a_part_block_starts_a_period_later() -> None:
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=20)
    buf.write(ramp(100))  # under a block: waits the target and a period more
    waits = buf.starts_in_s()
    assert waits is not None and 0.025 < waits <= 0.03


# ---- shrinking the delay actually buffered ------------------------------------------


def sine(n: int, amp: float = 20000, freq: float = 440) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / RATE)).astype(np.int16)


def play_out(buf: PlayoutBuffer, block: int = 240, stall_s: float = 0.0) -> np.ndarray:
    """Reads everything as a device would, as fast as it can; once started, the device
    stalls for `stall_s` if given (as a starved callback thread does)."""
    out = np.empty(block, dtype=np.int16)
    played: list[np.ndarray] = []
    deadline = time.monotonic() + 2
    while not buf.playing:
        assert time.monotonic() < deadline
        buf.read_into(out)
    played.append(out.copy())
    time.sleep(stall_s)
    while buf.playing:
        got = buf.read_into(out)
        played.append(out[:got].copy())
    return np.concatenate(played)


def test_playback_lagging_its_schedule_is_played_out_faster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The device stalls for 300 ms mid-reply: the lag goes, the rest plays."""
    monkeypatch.setattr(playout, "_TRIM_WINDOW_S", 0.0)  # judge at every read
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0)
    buf.write(sine(RATE // 2))
    played = play_out(buf, stall_s=0.3)
    assert buf.trimmed_samples > 0
    assert played.size + buf.trimmed_samples == RATE // 2 == buf.consumed
    # Only the lag goes (300 ms, less the target and a margin), never more.
    assert buf.trimmed_samples <= round(0.3 * RATE)
    # At most 2.5 ms per 10 ms block (25% faster) while over 100 ms, per four blocks
    # (about 6%) below that.
    hurried = RATE // 2 - round(0.13 * RATE)
    assert buf.trimmed_samples <= hurried * 0.25 / 1.25 + played.size * 0.0625 + 60


def test_audio_sent_ahead_of_real_time_is_kept_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server sending a reply faster than real time is not late: nothing is cut."""
    monkeypatch.setattr(playout, "_TRIM_WINDOW_S", 0.0)
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0)
    reply = sine(RATE)
    t0 = time.monotonic()
    for i in range(25):  # 1 s of audio in 40 ms chunks, all within 10 ms
        buf.write(reply[i * 960 : (i + 1) * 960], arrived=t0 + i * 0.0004)
    out = np.empty(240, dtype=np.int16)
    played: list[np.ndarray] = []
    deadline = time.monotonic() + 3
    reads, start = 0, 0.0
    while buf.depth:  # a device taking it in real time: 10 ms every 10 ms
        assert time.monotonic() < deadline
        got = buf.read_into(out)
        played.append(out[:got].copy())
        if got:
            reads += 1
            start = start if reads > 1 else time.monotonic()
            time.sleep(max(0.0, start + reads * 0.01 - time.monotonic()))
    assert buf.trimmed_samples == 0
    assert np.array_equal(np.concatenate(played)[48:], reply[48:])  # after the fade-in


def test_no_cut_when_the_depth_is_within_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(playout, "_TRIM_WINDOW_S", 0.0)
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=10)
    buf.write(sine(round(0.025 * RATE)))  # 25 ms: under target, margin and a block
    played = play_out(buf, stall_s=0.3)  # lagging, but nothing to spare
    assert buf.trimmed_samples == 0 and played.size == round(0.025 * RATE)


def test_a_cut_does_not_click(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cuts cross-fade: the output's sample-to-sample step stays within a little of
    the sine's own steepest step."""
    monkeypatch.setattr(playout, "_TRIM_WINDOW_S", 0.0)
    amp, freq = 20000, 440
    buf = PlayoutBuffer(RATE, 60, period_ms=10, initial_jitter_ms=0, fade_ms=2)
    buf.write(sine(RATE, amp, freq))
    played = play_out(buf, stall_s=0.5).astype(np.int64)
    assert buf.trimmed_samples >= 600  # several cuts happened
    own = 2 * np.pi * freq / RATE * amp
    assert np.abs(np.diff(played)).max() <= 1.25 * own
