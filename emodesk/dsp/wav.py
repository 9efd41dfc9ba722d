"""Reading and writing WAV files.

`read_wav` parses the RIFF chunks itself, so it takes what real recorders write: 8-bit
unsigned, 16/24/32-bit integer and 32/64-bit IEEE-float PCM, plain or WAVE_FORMAT_EXTENSIBLE,
1 to 8 channels at 4 to 384 kHz; channels are averaged and the result resampled to 16 kHz
int16. The samples are read, converted and resampled a block (about 1 MiB of the file) at a
time, so an hour-long recording costs little more memory than its 16 kHz result. Everything
it cannot take raises `WavError` with a sentence a user can act on.
"""

from __future__ import annotations

import io
import math
import os
import stat
import struct
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from emodesk.core.export import write_bytes_atomic
from emodesk.core.pcm import MIC_RATE
from emodesk.dsp.resample import StreamResampler

TARGET_RATE = MIC_RATE  # what the estimator and the Live API take
MIN_RATE = 4000
MAX_RATE = 384000
MAX_CHANNELS = 8

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
_SAMPLE_BYTES = {_PCM: (1, 2, 3, 4), _IEEE_FLOAT: (4, 8)}
_FMT_READ_LIMIT = 64  # the fields we use sit in the first 26 bytes of the format chunk
_BLOCK_BYTES = 1 << 20  # file bytes converted per step: 2.7 s of 48 kHz stereo float

Int16Array = np.ndarray[Any, np.dtype[np.int16]]
ProgressCallback = Callable[[float, float], None]


class WavError(ValueError):
    """The file cannot be read as uncompressed PCM WAV audio."""


def _chunks(handle: BinaryIO, file_size: int, path: Path) -> dict[bytes, tuple[int, int, int]]:
    """Chunk id -> (offset, size present, size declared) for the first "fmt " and "data"
    chunks; seeks over the rest and tolerates a truncated last chunk."""
    found: dict[bytes, tuple[int, int, int]] = {}
    pos = 12
    while pos + 8 <= file_size and not (b"fmt " in found and b"data" in found):
        handle.seek(pos)
        chunk_id, declared = struct.unpack("<4sI", handle.read(8))
        start = pos + 8
        # Streaming writers leave the size as 0 or 0xFFFFFFFF; take what is there.
        size = min(declared, file_size - start)
        if chunk_id == b"data" and size == 0 and start < file_size:
            size = file_size - start
        if declared in (0, 0xFFFFFFFF):
            declared = size
        found.setdefault(chunk_id, (start, size, declared))
        pos = start + size + (size & 1)
    if b"fmt " not in found:
        raise WavError(f"{path}: WAV file has no format chunk")
    if b"data" not in found:
        raise WavError(f"{path}: WAV file has no audio data chunk")
    return found


def _check_format(
    fmt_tag: int, channels: int, rate: int, block_align: int, bits: int, path: Path
) -> None:
    """Refuse headers we cannot or should not decode, before any sample is read: a rate of
    1 Hz would otherwise make the resampler produce 16000 samples per input sample."""
    if fmt_tag not in (_PCM, _IEEE_FLOAT):
        name = _KNOWN_COMPRESSED.get(fmt_tag, f"format 0x{fmt_tag:04x}")
        raise WavError(f"{path}: compressed WAV ({name}) is not supported; convert it to PCM")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise WavError(
            f"{path}: a sample rate of {rate} Hz is not supported "
            f"(only {MIN_RATE} to {MAX_RATE} Hz); the header may be damaged"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavError(
            f"{path}: {channels} channels are not supported (only 1 to {MAX_CHANNELS}); "
            "the header may be damaged"
        )
    if block_align <= 0 or block_align % channels:
        raise WavError(
            f"{path}: WAV header is inconsistent (channels={channels}, rate={rate}, "
            f"block_align={block_align})"
        )
    if block_align // channels not in _SAMPLE_BYTES[fmt_tag]:
        kind = "float" if fmt_tag == _IEEE_FLOAT else "integer"
        widths = " or ".join(str(8 * n) for n in _SAMPLE_BYTES[fmt_tag])
        raise WavError(
            f"{path}: {block_align // channels * 8}-bit {kind} samples are not supported "
            f"(only {widths}; header says {bits} bits, block_align={block_align})"
        )


def _decode(
    raw: bytes, fmt_tag: int, bits: int, block_align: int, channels: int, path: Path
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], int]:
    """Samples as float64 frames x channels in [-1, 1], and how many float samples were
    not numbers (NaN, +-Inf): those are set to 0, silence rather than a full-scale click."""
    frame_bytes = block_align
    n_frames = len(raw) // frame_bytes
    raw = raw[: n_frames * frame_bytes]
    bytes_per_sample = frame_bytes // channels
    if fmt_tag == _IEEE_FLOAT:
        if bytes_per_sample not in (4, 8):
            raise WavError(f"{path}: {bits}-bit float WAV is not supported (only 32 or 64)")
        dt = np.dtype("<f4") if bytes_per_sample == 4 else np.dtype("<f8")
        samples = np.frombuffer(raw, dtype=dt).astype(np.float64)
        bad = ~np.isfinite(samples)
        not_numbers = int(np.count_nonzero(bad))
        if not_numbers:
            samples[bad] = 0.0
        clipped = np.clip(samples, -1.0, 1.0, out=samples).reshape(n_frames, channels)
        return clipped, not_numbers
    return _decode_integer(raw, bits, bytes_per_sample, n_frames, channels, path), 0


def _decode_integer(
    raw: bytes, bits: int, bytes_per_sample: int, n_frames: int, channels: int, path: Path
) -> np.ndarray[Any, np.dtype[np.float64]]:
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


def _to_int16_mono(frames: np.ndarray[Any, np.dtype[np.float64]], channels: int) -> Int16Array:
    mono = frames.mean(axis=1) if channels > 1 else frames[:, 0]
    pcm: Int16Array = np.clip(np.rint(mono * 32768.0), -32768, 32767).astype(np.int16)
    return pcm


class _Output:
    """The 16 kHz result, preallocated from the expected length so that it is never
    copied as it grows (it grows only if the resampler gives a few samples more)."""

    def __init__(self, expected: int) -> None:
        self.samples: Int16Array = np.empty(expected + 64, dtype=np.int16)
        self.size = 0

    def append(self, block: Int16Array) -> None:
        end = self.size + block.size
        if end > self.samples.size:
            grown = np.empty(max(end, self.samples.size + self.samples.size // 8), np.int16)
            grown[: self.size] = self.samples[: self.size]
            self.samples = grown
        self.samples[self.size : end] = block
        self.size = end


def read_wav(
    path: str | os.PathLike[str],
    on_progress: ProgressCallback | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> tuple[Int16Array, float]:
    """Read a WAV file as 16 kHz mono int16 samples; returns (samples, duration in seconds).

    `on_progress(done_s, total_s)`, if given, is called after each block with the seconds
    of audio read so far and in all. `on_warning(message)` hears about a file that can be
    read, but not as it was written: truncated, or float samples that were not numbers
    (NaN/Inf, read as 0)."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise WavError(f"{p}: no such file") from None
    except OSError as exc:
        raise WavError(f"{p}: cannot read the file ({exc.strerror or exc})") from exc
    # Checked before opening: opening a FIFO with no writer waits forever.
    if not stat.S_ISREG(mode):
        hint = " (save the audio to a file first)" if stat.S_ISFIFO(mode) else ""
        raise WavError(f"{p}: is {_what_it_is(mode)}, not a WAV file{hint}")
    try:
        with p.open("rb") as handle:
            return _read(handle, p, on_progress, on_warning)
    except OSError as exc:
        raise WavError(f"{p}: cannot read the file ({exc.strerror or exc})") from exc


def _what_it_is(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _read(
    handle: BinaryIO,
    p: Path,
    on_progress: ProgressCallback | None,
    on_warning: Callable[[str], None] | None,
) -> tuple[Int16Array, float]:
    file_size = os.fstat(handle.fileno()).st_size
    if file_size == 0:
        raise WavError(f"{p}: the file is empty")
    riff = handle.read(12)
    if len(riff) < 12 or riff[:4] not in (b"RIFF", b"RF64") or riff[8:12] != b"WAVE":
        raise WavError(f"{p}: not a WAV file (no RIFF/WAVE header)")
    chunks = _chunks(handle, file_size, p)
    fmt_off, fmt_size, _ = chunks[b"fmt "]
    if fmt_size < 16:
        raise WavError(f"{p}: WAV format chunk is truncated")
    handle.seek(fmt_off)
    fmt = handle.read(min(fmt_size, _FMT_READ_LIMIT))
    fmt_tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if fmt_tag == _EXTENSIBLE and len(fmt) >= 40:
        # The real format is the first two bytes of the sub-format GUID.
        (fmt_tag,) = struct.unpack_from("<H", fmt, 24)
    _check_format(fmt_tag, channels, rate, block_align, bits, p)
    data_off, data_size, declared_size = chunks[b"data"]
    n_frames = data_size // block_align
    if n_frames == 0:
        raise WavError(f"{p}: the WAV file holds no audio samples")
    duration_s = n_frames / rate
    if declared_size > data_size and on_warning is not None:
        on_warning(
            f"{p}: the file is truncated: its header says {declared_size // block_align / rate:.1f}"
            f" s of audio, only {duration_s:.1f} s are there (the rest is used)"
        )

    block_frames = max(1, _BLOCK_BYTES // block_align)
    resampler = StreamResampler(rate, TARGET_RATE)
    out = _Output(math.ceil(n_frames * TARGET_RATE / rate))
    handle.seek(data_off)
    done = 0
    not_numbers = 0
    while done < n_frames:
        want = min(block_frames, n_frames - done)
        raw = handle.read(want * block_align)
        got = len(raw) // block_align
        if got == 0:  # the file shrank while we read it: keep what arrived
            break
        # A partial frame at the end is dropped.
        frames, bad = _decode(raw, fmt_tag, bits, block_align, channels, p)
        del raw
        not_numbers += bad
        out.append(resampler.process(_to_int16_mono(frames, channels)))
        done += got
        if on_progress is not None:
            on_progress(done / rate, duration_s)
    out.append(resampler.flush())
    if not_numbers and on_warning is not None:
        on_warning(_not_numbers_message(p, not_numbers))
    return out.samples[: out.size], done / rate


def _not_numbers_message(p: Path, count: int) -> str:
    if count == 1:
        return f"{p}: 1 sample was not a number (NaN/Inf) and was set to 0"
    return f"{p}: {count} samples were not numbers (NaN/Inf) and were set to 0"


def write_wav(path: str | os.PathLike[str], pcm: np.ndarray[Any, Any], rate: int) -> None:
    """Write int16 PCM (1-D mono, or frames x channels) atomically and durably: a reader
    never sees half a file. Raises `ExportError` (an `OSError`) when it cannot be written."""
    a = np.asarray(pcm)
    if a.dtype != np.int16:
        raise ValueError(f"pcm must be int16, got {a.dtype}")
    if a.ndim not in (1, 2):
        raise ValueError(f"pcm must be 1-D or frames x channels, got shape {a.shape}")
    channels = 1 if a.ndim == 1 else a.shape[1]
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(a, dtype="<i2").tobytes())
    write_bytes_atomic(path, buffer.getbuffer().tobytes())
