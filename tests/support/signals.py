"""Signal helpers the audio tests share: test noise, finding one signal in another, and
a bounded wait on state another thread changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np


def best_match(haystack: np.ndarray, needle: np.ndarray) -> tuple[float, int]:
    """Normalised cross-correlation peak of `needle` inside `haystack`, and its lag;
    (0.0, -1) when the needle is longer, as it cannot lie inside."""
    if needle.size > haystack.size:
        return 0.0, -1
    h = haystack.astype(np.float64)
    n = needle.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(h.size + n.size)))
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(n, size)), size)
    corr = corr[: h.size - n.size + 1]
    lag = int(np.argmax(corr))
    energy = np.sqrt(np.sum(n**2) * np.sum(h[lag : lag + n.size] ** 2))
    return float(corr[lag] / energy) if energy else 0.0, lag


def assert_heard_whole_and_in_order(recorded: np.ndarray, segments: list[np.ndarray]) -> None:
    """`recorded` holds the segments one after the other, each where it belongs: none
    reordered, dropped or apart from the next (equal lengths)."""
    reply = np.concatenate(segments)
    score, lag = best_match(recorded, reply)
    assert score > 0.95, f"speaker output differs from the reply (ncc {score:.2f})"
    lags = [best_match(recorded, seg)[1] for seg in segments]
    step = segments[0].size
    assert lags == [lag + k * step for k in range(len(segments))], (
        "segments out of order or with gaps"
    )


def band_limited_noise(n: int, seed: int) -> np.ndarray:
    """Noise below 8 kHz: the server's resamplers pass it unchanged (unlike near Nyquist)."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spectrum[np.fft.rfftfreq(n, 1 / 24000) > 8000] = 0
    x = np.fft.irfft(spectrum, n)
    return (x / np.abs(x).max() * 8000).astype(np.int16)


async def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    async with asyncio.timeout(timeout_s):
        # State changes on the engine's threads; polling it is a bounded wait.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert condition(), what
