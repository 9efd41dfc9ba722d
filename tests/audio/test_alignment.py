"""The AEC's far-end/capture pairing by the devices' clocks (`emodesk.audio.alignment`)."""

from __future__ import annotations

import numpy as np

from emodesk.audio.alignment import BlockClock, EchoAlignment


def test_a_captured_sample_is_paired_with_what_sounded_just_after_it() -> None:
    """Captured sample 0 at ADC time 10.000 s; output sample 0 (24 kHz) sounds at 10.030 s.
    With a 10 ms lead the reference for it is what sounded at 10.010 s: 20 ms before
    output sample 0, that is 16 kHz far index -320."""
    align = EchoAlignment(lead_ms=10)
    capture = BlockClock(index=0, device_time=10.000, estimate=0.0)
    output = BlockClock(index=0, device_time=10.030, estimate=0.0)
    assert align.far_index(0, capture, 16000, output, 24000) == -320
    # 1 s of capture later (48 kHz input this time: its ring index counts 48 kHz samples).
    capture = BlockClock(index=48000, device_time=11.000, estimate=0.0)
    output = BlockClock(index=24000, device_time=11.030, estimate=0.0)
    assert align.far_index(16000, capture, 48000, output, 24000) == 16000 - 320


def test_callback_jitter_does_not_move_the_pairing_but_a_restarted_stream_does() -> None:
    align = EchoAlignment(lead_ms=10, tolerance_ms=4, window=5)
    rng = np.random.default_rng(1)
    capture_at, sounded_at = 100.0, 100.028
    pairs = []
    for k in range(200):  # 20 ms frames; DAC times jittering by up to 2 ms
        t = k * 0.02
        capture = BlockClock(k * 320, capture_at + t, 0.0)
        output = BlockClock(k * 480, sounded_at + t + rng.uniform(-0.002, 0.002), 0.0)
        pairs.append(align.far_index(k * 320, capture, 16000, output, 24000))
    assert align.moves == 0
    assert len({p - k * 320 for k, p in enumerate(pairs) if p is not None}) == 1
    before = pairs[0]
    assert before is not None
    # The output stream restarted: its samples now sound 25 ms later than before, so the
    # far index that sounds at a given moment is 400 (25 ms at 16 kHz) lower.
    for k in range(200, 210):
        t = k * 0.02
        capture = BlockClock(k * 320, capture_at + t, 0.0)
        output = BlockClock(k * 480, sounded_at + 0.025 + t, 0.0)
        far = align.far_index(k * 320, capture, 16000, output, 24000)
    assert align.moves == 1
    assert far is not None and abs((far - 209 * 320) - (before - 400)) <= 32  # 2 ms


def test_without_device_times_the_callbacks_estimates_stand_in() -> None:
    align = EchoAlignment(lead_ms=10)
    capture = BlockClock(index=0, device_time=0.0, estimate=5.000)
    output = BlockClock(index=0, device_time=7.5, estimate=5.040)  # one side has none
    assert align.far_index(0, capture, 16000, output, 16000) == -480
    assert align.far_index(0, None, 16000, output, 16000) == -480  # the pairing so far
    assert EchoAlignment().far_index(0, None, 16000, output, 16000) is None
