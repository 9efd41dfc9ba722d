"""Fixtures for the audio tests: a private PulseAudio null-sink stack and test speech."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from emodesk.audio import AudioEngine, AudioSettings
from tests.support.pulse import PulseStack, espeak_wav, missing_binaries
from tests.support.system_tools import missing_message


def _require_binaries(*extra: str) -> None:
    missing = missing_binaries() + [b for b in extra if shutil.which(b) is None]
    if missing:  # never a skip: a green run means the real stack ran
        pytest.fail(missing_message(missing))


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseStack]:
    """One PulseAudio server for the session; PyAudio created later sees its devices."""
    _require_binaries()
    stack = PulseStack().start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About two seconds of espeak-ng speech (22.05 kHz mono PCM16)."""
    _require_binaries("espeak-ng")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    return espeak_wav(path, "The quick brown fox jumps over the lazy dog, twice.", speed=170)


@pytest.fixture
async def make_engine(pulse: PulseStack) -> AsyncIterator[Callable[..., AudioEngine]]:
    engines: list[AudioEngine] = []
    loop = asyncio.get_running_loop()

    def make(**settings: object) -> AudioEngine:
        engine = AudioEngine(loop, AudioSettings(**settings))  # type: ignore[arg-type]
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await asyncio.to_thread(engine.close)
