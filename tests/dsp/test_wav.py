import errno
import os
import struct
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from emodesk.core.export import ExportError
from emodesk.dsp import wav
from emodesk.dsp.resample import resample
from emodesk.dsp.wav import WavError, read_wav, write_wav


def _tone(rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.round(8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def test_round_trip_stereo_44k_is_downmixed_and_resampled(tmp_path: Path) -> None:
    left = _tone(44100)
    path = tmp_path / "s.wav"
    write_wav(path, np.stack([left, left // 2], axis=1), 44100)
    pcm, duration = read_wav(path)
    assert duration == pytest.approx(0.5)
    assert pcm.dtype == np.int16 and pcm.size == 8000
    assert np.max(np.abs(pcm)) == pytest.approx(0.75 * 8000, rel=0.02)  # mean of channels


def _float_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    body += struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_ieee_float_wav(tmp_path: Path) -> None:
    path = tmp_path / "f.wav"
    _float_wav(path, _tone(16000) / 32768.0, 16000)
    pcm, _ = read_wav(path)
    np.testing.assert_allclose(pcm, _tone(16000), atol=1)


@pytest.mark.parametrize("sox_args", [["-b", "8"], ["-b", "24"], ["-b", "32"]])
def test_other_integer_widths(tmp_path: Path, sox_args: list[str]) -> None:
    src = tmp_path / "src.wav"
    write_wav(src, _tone(16000), 16000)
    out = tmp_path / "out.wav"
    subprocess.run(["sox", str(src), *sox_args, str(out)], check=True, timeout=30)
    pcm, _ = read_wav(out)
    tolerance = 512 if sox_args[1] == "8" else 1  # 8-bit: one step (256) plus sox dither
    np.testing.assert_allclose(pcm, _tone(16000), atol=tolerance)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "empty"),
        (b"ID3\x03\x00 this is an mp3", "not a WAV"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no format chunk"),
    ],
)
def test_unreadable_files_raise_clear_errors(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WavError, match=message):
        read_wav(path)


def test_compressed_and_sample_less_wavs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "alaw.wav"
    fmt = struct.pack("<HHIIHH", 6, 1, 8000, 8000, 1, 8)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 4) + b"\0" * 4
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(WavError, match="compressed WAV \\(A-law\\)"):
        read_wav(path)
    empty = tmp_path / "empty.wav"
    write_wav(empty, np.zeros(0, np.int16), 16000)
    with pytest.raises(WavError, match="no audio samples"):
        read_wav(empty)


def test_write_wav_checks_dtype_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    with pytest.raises(ValueError):
        write_wav(path, np.zeros(10, np.float32), 16000)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_write_wav_syncs_before_replacing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"old")
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_wav(path, _tone(16000), 16000)
    assert synced
    np.testing.assert_array_equal(read_wav(path)[0], _tone(16000))
    assert list(tmp_path.iterdir()) == [path]


def test_write_wav_failure_is_an_export_error_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"old")

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ExportError, match="disk is full"):
        write_wav(path, _tone(16000), 16000)
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def _header(fmt_tag: int, channels: int, rate: int, block_align: int, bits: int) -> bytes:
    data = b"\0" * 4096
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block_align, block_align, bits)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    return b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((1, 1, 1, 2, 16), "sample rate of 1 Hz is not supported"),
        ((1, 1, 3999, 2, 16), "sample rate of 3999 Hz"),
        ((1, 2, 1_000_000, 4, 16), "sample rate of 1000000 Hz"),
        ((1, 0, 16000, 2, 16), "0 channels are not supported"),
        ((1, 9, 16000, 18, 16), "9 channels are not supported"),
        ((1, 2, 16000, 3, 16), "header is inconsistent"),
        ((1, 1, 16000, 0, 16), "header is inconsistent"),
        ((1, 1, 16000, 4000, 16), "32000-bit integer samples are not supported"),
        ((3, 1, 16000, 2, 16), "16-bit float samples are not supported"),
    ],
)
def test_absurd_headers_are_refused_before_any_work(
    tmp_path: Path, fields: tuple[int, int, int, int, int], message: str
) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(_header(*fields))
    with pytest.raises(WavError, match=message):
        read_wav(path)


def test_edge_rates_and_eight_channels_are_read(tmp_path: Path) -> None:
    for rate, channels in ((4000, 1), (384000, 2), (16000, 8)):
        path = tmp_path / f"{rate}-{channels}.wav"
        write_wav(path, np.tile(_tone(rate)[:, None], (1, channels)), rate)
        pcm, duration = read_wav(path)
        assert duration == pytest.approx(0.5) and pcm.size == 8000


def _whole_file_reference(samples: np.ndarray, rate: int) -> np.ndarray:
    """The reader before it worked in blocks: everything decoded, downmixed, resampled at once."""
    mono = samples.astype(np.float64).mean(axis=1)
    pcm = np.clip(np.rint(mono * 32768.0), -32768, 32767).astype(np.int16)
    return resample(pcm, rate, 16000)


def _float_stereo(seconds: float, rate: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    t = np.arange(round(seconds * rate)) / rate
    left = 0.4 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    return np.stack([left, -0.5 * left], axis=1).astype(np.float32)


def _float_stereo_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 2, rate, rate * 8, 8, 32)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data)


def test_block_wise_reading_matches_the_whole_file_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = _float_stereo(3.0, 44100)
    path = tmp_path / "f.wav"
    _float_stereo_wav(path, samples, 44100)
    reference = _whole_file_reference(samples, 44100)
    monkeypatch.setattr(wav, "_BLOCK_BYTES", 1 << 30)  # one block: the old computation
    whole, _ = read_wav(path)
    np.testing.assert_array_equal(whole, reference)
    monkeypatch.setattr(wav, "_BLOCK_BYTES", 4099)  # many blocks, not frame-aligned
    blocks, duration = read_wav(path)
    assert duration == pytest.approx(3.0) and blocks.size == reference.size
    # soxr dithers int16 output, so chunking moves the dither: at most 2 steps (-84 dBFS).
    assert np.max(np.abs(blocks.astype(np.int32) - reference)) <= 2


def test_block_wise_reading_at_16k_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pcm = np.random.default_rng(3).integers(-32768, 32767, 50_001).astype(np.int16)
    path = tmp_path / "m.wav"
    write_wav(path, pcm, 16000)
    monkeypatch.setattr(wav, "_BLOCK_BYTES", 1001)
    np.testing.assert_array_equal(read_wav(path)[0], pcm)


def test_progress_reports_seconds_read_up_to_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.wav"
    write_wav(path, np.zeros(48000 * 2, np.int16), 48000)
    monkeypatch.setattr(wav, "_BLOCK_BYTES", 48000)  # half a second per block
    calls: list[tuple[float, float]] = []
    read_wav(path, on_progress=lambda done, total: calls.append((done, total)))
    assert [done for done, _ in calls] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert {total for _, total in calls} == {2.0}


def test_a_long_file_is_read_with_bounded_extra_memory(tmp_path: Path) -> None:
    rate, seconds = 48000, 60
    path = tmp_path / "long.wav"
    data_size = rate * seconds * 8
    fmt = struct.pack("<HHIIHH", 3, 2, rate, rate * 8, 8, 32)
    with path.open("wb") as out:
        out.write(b"RIFF" + struct.pack("<I", 36 + data_size) + b"WAVEfmt ")
        out.write(struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_size))
        block = _float_stereo(5.0, rate).tobytes()
        for _ in range(seconds // 5):
            out.write(block)
    tracemalloc.start()
    try:
        pcm, duration = read_wav(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert duration == pytest.approx(seconds) and pcm.size == 16000 * seconds
    extra = peak - pcm.nbytes
    # The whole-file reader peaked near 7x the file size (23 MB here); blocks keep the extra
    # to a few block-sized buffers whatever the length.
    assert extra < 8 * wav._BLOCK_BYTES
    assert peak < data_size / 2


@pytest.mark.timeout(10)
def test_a_fifo_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    # Opening a FIFO with no writer would wait forever: the timeout is the test.
    fifo = tmp_path / "live.wav"
    os.mkfifo(fifo)
    with pytest.raises(WavError, match=r"is a named pipe \(FIFO\), not a WAV file"):
        read_wav(fifo)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="is a directory, not a WAV file"):
        read_wav(tmp_path)


def test_samples_that_are_not_numbers_are_counted_said_and_silenced(tmp_path: Path) -> None:
    samples = (_tone(16000) / 32768.0).astype(np.float32)
    samples[100:110] = np.nan
    samples[200] = np.inf
    samples[300] = -np.inf
    path = tmp_path / "f.wav"
    _float_wav(path, samples, 16000)
    warnings: list[str] = []
    pcm, _ = read_wav(path, on_warning=warnings.append)
    assert warnings == [f"{path}: 12 samples were not numbers (NaN/Inf) and were set to 0"]
    assert pcm[100:110].tolist() == [0] * 10 and pcm[200] == 0 and pcm[300] == 0
    good = np.ones(pcm.size, bool)
    good[[*range(100, 110), 200, 300]] = False
    np.testing.assert_allclose(pcm[good], _tone(16000)[good], atol=1)


def test_one_sample_that_is_not_a_number_is_said_in_the_singular(tmp_path: Path) -> None:
    samples = (_tone(16000) / 32768.0).astype(np.float32)
    samples[5] = np.nan
    path = tmp_path / "f.wav"
    _float_wav(path, samples, 16000)
    warnings: list[str] = []
    read_wav(path, on_warning=warnings.append)
    assert warnings == [f"{path}: 1 sample was not a number (NaN/Inf) and was set to 0"]


def test_a_clean_float_file_gives_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "f.wav"
    _float_wav(path, _tone(16000) / 32768.0, 16000)
    warnings: list[str] = []
    read_wav(path, on_warning=warnings.append)
    assert warnings == []
