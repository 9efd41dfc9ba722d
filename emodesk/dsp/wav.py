"""Reading and writing WAV files.

`read_wav` parses the RIFF chunks itself, so it takes what real recorders write: 8-bit
unsigned, 16/24/32-bit integer and 32/64-bit IEEE-float PCM, plain or WAVE_FORMAT_EXTENSIBLE,
mono or multichannel, any rate; channels are averaged and the result resampled to 16 kHz
int16. Everything it cannot take raises `WavError` with a sentence a user can act on.
"""

from __future__ import annotations

import os
import struct
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np

from emodesk.dsp.resample import resample

TARGET_RATE = 16000

_PCM = 0x0001
_IEEE_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
_KNOWN_COMPRESSED = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "µ-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG",
    0x0055: "MP3",
}

Int16Array = np.ndarray[Any, np.dtype[np.int16]]


class WavError(ValueError):
    """The file cannot be read as uncompressed PCM WAV audio."""


def _chunks(data: bytes, path: Path) -> dict[bytes, tuple[int, int]]:
    """Chunk id -> (offset, size) for the first of each id; tolerates a truncated last chunk."""
    found: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        start = pos + 8
        # Streaming writers leave the size as 0 or 0xFFFFFFFF; take what is there.
        size = min(size, len(data) - start)
        if chunk_id == b"data" and size == 0 and start < len(data):
            size = len(data) - start
        found.setdefault(chunk_id, (start, size))
        pos = start + size + (size & 1)
    if b"fmt " not in found:
        raise WavError(f"{path}: WAV file has no format chunk")
    if b"data" not in found:
        raise WavError(f"{path}: WAV file has no audio data chunk")
    return found


def _decode(
    raw: bytes, fmt_tag: int, bits: int, block_align: int, channels: int, path: Path
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Samples as float64 frames x channels in [-1, 1]."""
    frame_bytes = block_align
    n_frames = len(raw) // frame_bytes
    raw = raw[: n_frames * frame_bytes]
    bytes_per_sample = frame_bytes // channels
    if fmt_tag == _IEEE_FLOAT:
        if bytes_per_sample not in (4, 8):
            raise WavError(f"{path}: {bits}-bit float WAV is not supported (only 32 or 64)")
        dt = np.dtype("<f4") if bytes_per_sample == 4 else np.dtype("<f8")
        samples = np.frombuffer(raw, dtype=dt).astype(np.float64)
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
        return np.clip(samples, -1.0, 1.0).reshape(n_frames, channels)
    if bytes_per_sample == 1:
        u8 = np.frombuffer(raw, dtype=np.uint8)
        return ((u8.astype(np.float64) - 128.0) / 128.0).reshape(n_frames, channels)
    if bytes_per_sample == 2:
        i16 = np.frombuffer(raw, dtype="<i2")
        return (i16.astype(np.float64) / 32768.0).reshape(n_frames, channels)
    if bytes_per_sample == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        i24 = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        i24 = np.where(i24 >= 1 << 23, i24 - (1 << 24), i24)
        return (i24.astype(np.float64) / float(1 << 23)).reshape(n_frames, channels)
    if bytes_per_sample == 4:
        i32 = np.frombuffer(raw, dtype="<i4")
        return (i32.astype(np.float64) / float(1 << 31)).reshape(n_frames, channels)
    raise WavError(f"{path}: {bits}-bit integer WAV is not supported")


def read_wav(path: str | os.PathLike[str]) -> tuple[Int16Array, float]:
    """Read a WAV file as 16 kHz mono int16 samples; returns (samples, duration in seconds)."""
    p = Path(path)
    if not p.exists():
        raise WavError(f"{p}: no such file")
    if p.is_dir():
        raise WavError(f"{p}: is a directory, not a WAV file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise WavError(f"{p}: cannot read the file ({exc.strerror or exc})") from exc
    if len(data) == 0:
        raise WavError(f"{p}: the file is empty")
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        raise WavError(f"{p}: not a WAV file (no RIFF/WAVE header)")
    chunks = _chunks(data, p)
    fmt_off, fmt_size = chunks[b"fmt "]
    if fmt_size < 16:
        raise WavError(f"{p}: WAV format chunk is truncated")
    fmt_tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from(
        "<HHIIHH", data, fmt_off
    )
    if fmt_tag == _EXTENSIBLE and fmt_size >= 40:
        # The real format is the first two bytes of the sub-format GUID.
        (fmt_tag,) = struct.unpack_from("<H", data, fmt_off + 24)
    if fmt_tag not in (_PCM, _IEEE_FLOAT):
        name = _KNOWN_COMPRESSED.get(fmt_tag, f"format 0x{fmt_tag:04x}")
        raise WavError(f"{p}: compressed WAV ({name}) is not supported; convert it to PCM")
    if channels <= 0 or rate <= 0 or block_align <= 0 or block_align % channels:
        raise WavError(
            f"{p}: WAV header is inconsistent (channels={channels}, rate={rate}, "
            f"block_align={block_align})"
        )
    data_off, data_size = chunks[b"data"]
    raw = data[data_off : data_off + data_size]
    if len(raw) < block_align:
        raise WavError(f"{p}: the WAV file holds no audio samples")
    frames = _decode(raw, fmt_tag, bits, block_align, channels, p)
    duration_s = frames.shape[0] / rate
    mono = frames.mean(axis=1) if channels > 1 else frames[:, 0]
    pcm = np.clip(np.rint(mono * 32768.0), -32768, 32767).astype(np.int16)
    if rate != TARGET_RATE:
        pcm = resample(pcm, rate, TARGET_RATE)
    return pcm, duration_s


def write_wav(path: str | os.PathLike[str], pcm: np.ndarray[Any, Any], rate: int) -> None:
    """Write int16 PCM (1-D mono, or frames x channels) atomically: a reader never sees half."""
    a = np.asarray(pcm)
    if a.dtype != np.int16:
        raise ValueError(f"pcm must be int16, got {a.dtype}")
    if a.ndim not in (1, 2):
        raise ValueError(f"pcm must be 1-D or frames x channels, got shape {a.shape}")
    channels = 1 if a.ndim == 1 else a.shape[1]
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as raw_file, wave.open(raw_file, "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.ascontiguousarray(a, dtype="<i2").tobytes())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
