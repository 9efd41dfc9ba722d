import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

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


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox (Debian package) is not installed")
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


def test_write_wav_is_atomic_and_checks_dtype(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    with pytest.raises(ValueError):
        write_wav(path, np.zeros(10, np.float32), 16000)
    assert not path.exists() and list(tmp_path.iterdir()) == []
