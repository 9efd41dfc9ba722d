"""The playout buffer on generated signals: jitter target, order, underruns, flush."""

from __future__ import annotations

import time

import numpy as np
import pytest

from emodesk.audio.playout import PlayoutBuffer

RATE = 24000


def ramp(n: int, start: int = 0) -> np.ndarray:
    return ((np.arange(start, start + n) % 30000) + 1).astype(np.int16)


def test_waits_for_target_depth_then_plays_everything_in_order() -> None:
    buf = PlayoutBuffer(RATE, target_ms=60)
    out = np.empty(240, dtype=np.int16)
    buf.write(ramp(960))  # 40 ms: below the 60 ms target
    assert buf.read_into(out) == 0 and not out.any()
    buf.write(ramp(960, 960))  # now 80 ms
    played = []
    while buf.depth:
        got = buf.read_into(out)
        played.append(out[:got].copy())
    assert np.array_equal(np.concatenate(played), ramp(1920))
    assert buf.underruns == 0


def test_short_reply_starts_after_waiting_the_target_time() -> None:
    buf = PlayoutBuffer(RATE, target_ms=20)
    buf.write(ramp(100))
    out = np.empty(50, dtype=np.int16)
    assert buf.read_into(out) == 0
    deadline = time.monotonic() + 2.0
    while buf.read_into(out) == 0:
        assert time.monotonic() < deadline, "a short reply never started"
    assert np.array_equal(out, ramp(50))


def test_gap_mid_reply_is_an_underrun_played_as_faded_silence() -> None:
    buf = PlayoutBuffer(RATE, target_ms=0, fade_ms=2)
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
    buf = PlayoutBuffer(RATE, target_ms=0)
    buf.write(ramp(4800))
    out = np.empty(240, dtype=np.int16)
    buf.read_into(out)
    assert buf.clear() == 4800 - 240
    assert buf.read_into(out) == 0 and not out.any()
    buf.write(ramp(10))
    assert buf.underruns == 0


def test_oldest_audio_is_dropped_past_the_limit() -> None:
    buf = PlayoutBuffer(RATE, target_ms=0, max_seconds=0.01)  # 240 samples
    buf.write(ramp(200))
    buf.write(ramp(200, 200))
    assert buf.depth == 240 and buf.dropped_samples == 160
    out = np.empty(240, dtype=np.int16)
    buf.read_into(out)
    assert np.array_equal(out, ramp(240, 160))


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"rate": RATE, "target_ms": -1}])
def test_bad_arguments_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PlayoutBuffer(**kwargs)  # type: ignore[arg-type]
