import threading

import numpy as np
import pytest

from emodesk.dsp.levels import (
    FLOOR_DBFS,
    SilenceDetector,
    noise_gate,
    normalize_volume,
    peak_dbfs,
    rms_dbfs,
)
from emodesk.dsp.resample import StreamResampler, resample
from emodesk.dsp.ringbuffer import RingBuffer

RATE = 16000


def _sine(amplitude: float, seconds: float = 0.5, f: float = 440.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.round(amplitude * 32767 * np.sin(2 * np.pi * f * t)).astype(np.int16)


def test_levels_of_known_signals() -> None:
    assert rms_dbfs(_sine(1.0)) == pytest.approx(-3.01, abs=0.02)
    assert peak_dbfs(_sine(0.5)) == pytest.approx(-6.02, abs=0.02)
    assert rms_dbfs(np.zeros(100, np.int16)) == FLOOR_DBFS
    assert peak_dbfs(np.zeros(0, np.int16)) == FLOOR_DBFS


def test_noise_gate_silences_quiet_stretch_but_keeps_word_edges() -> None:
    loud, quiet = _sine(0.3, 0.5), _sine(0.001, 1.0)
    out = noise_gate(np.concatenate([quiet, loud, quiet]), threshold_dbfs=-40.0, rate=RATE)
    assert out.dtype == np.int16
    assert rms_dbfs(out[: RATE // 2]) == FLOOR_DBFS  # well before the sound: closed
    # The loud part passes unchanged apart from the one-block ramps at its edges.
    middle = slice(RATE + 160, RATE + RATE // 2 - 160)
    np.testing.assert_array_equal(out[middle], np.concatenate([quiet, loud, quiet])[middle])
    # Release: the first 100 ms after the sound stay open (a word's tail), later is gated.
    after = RATE + RATE // 2
    assert rms_dbfs(out[after : after + 1600]) > FLOOR_DBFS
    assert rms_dbfs(out[after + 4000 :]) == FLOOR_DBFS


def test_normalize_volume_reaches_target_and_limits_gain() -> None:
    assert rms_dbfs(normalize_volume(_sine(0.05))) == pytest.approx(-20.0, abs=0.1)
    quiet = _sine(0.001)  # about -63 dBFS: a 20 dB boost may not lift it to -20
    assert rms_dbfs(normalize_volume(quiet)) == pytest.approx(rms_dbfs(quiet) + 20.0, abs=0.2)
    assert normalize_volume(np.zeros(10, np.int16)).tolist() == [0] * 10
    assert normalize_volume(_sine(1.0), target_rms_dbfs=0.0).max() == 32767  # clipped, no wrap


def test_silence_detector_uses_hangover() -> None:
    det = SilenceDetector(threshold_dbfs=-40.0, hangover_ms=300.0, rate=RATE)
    frame = 320  # 20 ms
    assert det.feed(np.zeros(frame, np.int16)) is True
    assert det.feed(_sine(0.3)[:frame]) is False
    quiet = [det.feed(np.zeros(frame, np.int16)) for _ in range(15)]
    assert quiet[:14] == [False] * 14 and quiet[14] is True  # 300 ms of quiet


def test_ring_buffer_latest_read_new_and_overrun() -> None:
    ring = RingBuffer(8)
    ring.write(np.arange(1, 4, dtype=np.int16))
    assert ring.latest(5).tolist() == [0, 0, 1, 2, 3]
    assert ring.read_new(2).tolist() == [1, 2]
    ring.write(np.arange(4, 14, dtype=np.int16))  # laps the reader
    assert ring.latest(8).tolist() == list(range(6, 14))
    assert ring.read_new().tolist() == list(range(6, 14))
    assert ring.dropped == 3 and ring.total_written == 13
    ring.clear()
    assert ring.read_new().size == 0 and ring.latest(3).tolist() == [0, 0, 0]


def test_ring_buffer_one_writer_one_reader_sees_every_sample_in_order() -> None:
    ring = RingBuffer(1 << 16, dtype=np.int32)
    total = 200_000
    got: list[np.ndarray] = []
    done = threading.Event()

    def writer() -> None:
        for start in range(0, total, 500):
            ring.write(np.arange(start, start + 500, dtype=np.int32))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    received = 0
    while received < total:
        chunk = ring.read_new(4096)
        received += chunk.size
        got.append(chunk)
        if chunk.size == 0 and done.is_set() and ring.available == 0:
            break
    thread.join(timeout=10)
    data = np.concatenate(got)
    assert ring.dropped + data.size == total
    assert np.all(np.diff(data) > 0)  # in order, nothing repeated


def test_resample_keeps_a_tone_and_the_stream_matches_batch() -> None:
    x = _sine(0.3, 1.0, f=1000.0, rate=48000)
    y = resample(x, 48000, RATE)
    assert y.dtype == np.int16 and y.size == RATE
    assert rms_dbfs(y) == pytest.approx(rms_dbfs(x), abs=0.1)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over one second
    stream = StreamResampler(48000, RATE)
    parts = [stream.process(x[i : i + 480]) for i in range(0, x.size, 480)] + [stream.flush()]
    streamed = np.concatenate(parts)
    assert streamed.size == y.size
    assert np.max(np.abs(streamed.astype(int) - y)) <= 2


def test_a_low_delay_stream_gives_each_chunk_out_at_once_and_keeps_a_tone() -> None:
    """The AEC's reference (24 -> 16 kHz, 10 ms chunks): high quality holds back tens of
    milliseconds, in bursts; low delay gives out what came in, less a sample."""
    x = _sine(0.3, 1.0, f=1000.0, rate=24000)
    held_back = {}
    for low_delay in (False, True):
        stream = StreamResampler(24000, RATE, low_delay=low_delay)
        given = taken = 0
        most = 0
        parts = []
        for i in range(0, x.size, 240):
            out = stream.process(x[i : i + 240])
            parts.append(out)
            given, taken = given + 240, taken + out.size
            most = max(most, given * RATE // 24000 - taken)
        held_back[low_delay] = most
        if low_delay:
            y = np.concatenate(parts)
            assert rms_dbfs(y) == pytest.approx(rms_dbfs(x), abs=0.2)
            assert np.argmax(np.abs(np.fft.rfft(y[: RATE // 2]))) == 500  # 2 Hz bins
    assert held_back[True] <= 2  # samples at 16 kHz
    assert held_back[False] >= RATE // 100  # 10 ms or more: why the reference needs it


def test_resample_rejects_bad_rates() -> None:
    with pytest.raises(ValueError):
        resample(np.zeros(10, np.int16), 0, RATE)
    with pytest.raises(ValueError):
        StreamResampler(RATE, -1)


def test_frame_levels_of_a_long_signal_match_per_frame_and_stay_small_in_memory() -> None:
    import tracemalloc

    from emodesk.dsp.levels import frame_levels_dbfs, rms_dbfs

    rng = np.random.default_rng(7)
    x = (rng.standard_normal(16000 * 60) * 2000).astype(np.int16)  # 1 minute, 1.9 MB
    tracemalloc.start()
    levels = frame_levels_dbfs(x, 160)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert levels.shape == (6000,)
    for i in (0, 1234, 5999):
        assert abs(levels[i] - rms_dbfs(x[i * 160 : (i + 1) * 160])) < 1e-9
    # A whole-signal float64 copy would be 7.7 MB; blocks keep it to a few MB.
    assert peak < 4_500_000


def test_ring_buffer_read_new_says_where_what_it_returns_starts() -> None:
    """The index counts every sample ever written, so a reader can tell a gap (an
    overrun) from a run that follows on."""
    ring = RingBuffer(8)
    ring.write(np.arange(5, dtype=np.int16))
    start, got = ring.read_new_indexed()
    assert start == 0 and got.tolist() == [0, 1, 2, 3, 4]
    ring.write(np.arange(5, 8, dtype=np.int16))
    assert ring.read_new_indexed()[0] == 5  # follows on
    ring.write(np.arange(8, 20, dtype=np.int16))  # more than it holds: 8-11 are lost
    start, got = ring.read_new_indexed()
    assert start == 12 and got.tolist() == list(range(12, 20))
    ring.clear()
    ring.write(np.arange(20, 22, dtype=np.int16))
    assert ring.read_new_indexed()[0] == 20
