import numpy as np
import pytest

from emodesk.dsp.pitch import YinTracker, yin

RATE = 16000


def _tone(f0: float, seconds: float = 1.0, harmonics: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return sum(0.3 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, harmonics + 1))


@pytest.mark.parametrize("f0", [65.0, 110.0, 196.0, 261.6, 440.0, 490.0])
@pytest.mark.parametrize("harmonics", [1, 6])
def test_yin_matches_known_f0_within_one_percent(f0: float, harmonics: int) -> None:
    est, voiced = yin(_tone(f0, harmonics=harmonics), RATE)
    inner = slice(5, -5)  # edge frames see the zero padding
    assert voiced[inner].all()
    assert np.max(np.abs(est[inner] / f0 - 1.0)) < 0.01


def test_yin_takes_int16_and_float_alike() -> None:
    x = _tone(150.0)
    f_float, _ = yin(x, RATE)
    f_int, _ = yin((x * 32767).astype(np.int16), RATE)
    assert np.nanmedian(f_int) == pytest.approx(np.nanmedian(f_float), rel=1e-3)


def test_silence_and_white_noise_are_unvoiced() -> None:
    _, voiced = yin(np.zeros(RATE), RATE)
    assert not voiced.any()
    noise = np.random.default_rng(1).normal(0, 0.1, RATE)
    _, voiced = yin(noise, RATE)
    assert voiced.mean() < 0.05


def test_one_frame_per_hop_and_empty_input() -> None:
    f0, voiced = yin(np.zeros(1234), RATE)
    assert f0.size == voiced.size == 1234 // 160
    f0, voiced = yin(np.zeros(10), RATE)
    assert f0.size == 0 and voiced.size == 0


def test_streaming_tracker_equals_batch() -> None:
    x = np.concatenate([_tone(120.0, 0.5, 4), np.zeros(3000), _tone(300.0, 0.7, 3)])
    batch_f0, batch_voiced = yin(x, RATE)
    tracker = YinTracker()
    parts = [tracker.feed(x[i : i + 333]) for i in range(0, x.size, 333)] + [tracker.flush()]
    f0 = np.concatenate([p[0] for p in parts])
    voiced = np.concatenate([p[1] for p in parts])
    np.testing.assert_array_equal(voiced, batch_voiced)
    np.testing.assert_allclose(f0, batch_f0, equal_nan=True)


def test_bad_range_is_rejected() -> None:
    with pytest.raises(ValueError):
        yin(np.zeros(1600), RATE, fmin=500.0, fmax=100.0)
