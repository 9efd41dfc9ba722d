"""The whole app minus widgets on real parts: espeak-ng speech played into a PulseAudio
null-sink microphone, the real audio engine (PortAudio through ALSA's pulse plugin),
push-to-talk turns through the controller, the real google-genai SDK over TLS to the
emulator, the sqlite store, and the reply recorded at the speaker's monitor."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emodesk.audio import AudioEngine, AudioSettings
from emodesk.commands.converse import WatchedCapture
from emodesk.conversation.api import (
    ControllerEvent,
    ConversationState,
    Notice,
    NoticeKind,
    ReadingAdded,
    TurnLatency,
)
from emodesk.conversation.controller import Connection, Controller
from emodesk.core.consent import ConsentRecord
from emodesk.core.settings import AppSettings
from emodesk.dsp.estimator import AcousticEstimator
from emodesk.dsp.wav import read_wav, write_wav
from emodesk.live.emulator.server import EmulatorServer
from emodesk.live.session import LiveSession, RetryPolicy
from emodesk.store import SessionStore
from tests.support.pulse import PulseStack
from tests.support.speech import AGITATED, CALM, NORMAL, Prosody, speech_16k

S = ConversationState
pytestmark = [pytest.mark.audio_stack, pytest.mark.timeout(120)]
LINES: tuple[tuple[str, Prosody], ...] = (  # short lines keep the real-time test short
    ("Hello there, can you help?", NORMAL),
    ("Where is my order?", CALM),
    ("I am really angry now!", AGITATED),
)


@dataclass
class Session:
    controller: Controller
    engine: AudioEngine
    mic: WatchedCapture
    store: SessionStore
    emulator: EmulatorServer
    estimator_calls: list[int]
    events: list[ControllerEvent] = field(default_factory=list)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class CountingEstimator(AcousticEstimator):
    def __init__(self, calls: list[int]) -> None:
        super().__init__()
        self._calls = calls

    def estimate(self, pcm16: Any, rate: int, **kw: Any) -> Any:
        self._calls.append(int(kw["turn"]))
        return super().estimate(pcm16, rate, **kw)


class SpeakerRecorder:
    """parec on the speaker's monitor, written to a file: a long session would fill a pipe
    nobody reads and stall the recorder."""

    def __init__(self, pulse: PulseStack, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._proc = subprocess.Popen(
            ["parec", "-d", "spk.monitor", "--rate=24000", "--channels=1", "--format=s16le",
             "--latency-msec=20", "--raw"],
            env=pulse.env(), stdout=self._file, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            pulse.wait_until_recording(self._proc)
        except BaseException:
            self._proc.kill()
            self._proc.wait(5)
            self._file.close()
            raise

    def stop(self) -> np.ndarray:
        self._proc.send_signal(signal.SIGINT)
        self._proc.wait(timeout=10)
        self._file.close()
        data = self.path.read_bytes()
        return np.frombuffer(data[: len(data) - len(data) % 2], dtype=np.int16)


@pytest.fixture(scope="module")
def turn_wavs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("turns")
    paths = []
    for i, (text, prosody) in enumerate(LINES, 1):
        path = folder / f"turn{i}.wav"
        pad = np.zeros(3200, dtype=np.int16)  # 0.2 s of room tone around each line
        write_wav(path, np.concatenate([pad, speech_16k(text, prosody), pad]), 16000)
        paths.append(path)
    return paths


async def open_session(pulse: PulseStack, tmp_path: Path, *, consent: bool, faults: str) -> Session:
    emulator = EmulatorServer(speed=4.0, faults=faults)
    await emulator.start()
    engine = AudioEngine(asyncio.get_running_loop(), AudioSettings())
    engine.start()
    store = SessionStore(tmp_path / "history.db")
    calls: list[int] = []
    settings = AppSettings(consent=ConsentRecord.grant() if consent else None)
    mic = WatchedCapture(engine)
    controller = Controller(
        live=LiveSession(retry=RetryPolicy(base_delay_s=0.05, max_delay_s=0.2)),
        audio=mic,
        store=store,
        estimator_factory=lambda: CountingEstimator(calls),
        settings=settings,
        connection=Connection(
            endpoint=emulator.url, ca_file=emulator.ca_file, api_key="test-key-not-secret"
        ),
    )
    session = Session(controller, engine, mic, store, emulator, calls)
    controller.subscribe(session.events.append)
    return session


async def close_session(session: Session) -> None:
    await session.controller.close()
    await asyncio.to_thread(session.engine.close)
    session.store.close()
    await session.emulator.stop()


async def speak_turn(session: Session, pulse: PulseStack, wav: Path) -> None:
    c = session.controller
    assert await c.wait_for_state(S.READY, limit_s=30), c.state
    assert c.push_to_talk_down()
    try:
        # Speak once the microphone delivers, as a user waits for the "listening" cue.
        await asyncio.wait_for(session.mic.live.wait(), 10)
        await asyncio.to_thread(pulse.play_into_mic, wav)
    finally:
        assert c.push_to_talk_up()
    assert await c.wait_for_state(S.READY, limit_s=30), c.state
    async with asyncio.timeout(20):
        # The engine's playout drains on its own thread: a bounded poll.
        while session.engine.reply_active:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.fixture
async def session_factory(pulse: PulseStack, tmp_path: Path) -> AsyncIterator[Any]:
    opened: list[Session] = []

    async def make(**kw: Any) -> Session:
        s = await open_session(pulse, tmp_path, **kw)
        opened.append(s)
        return s

    yield make
    for s in opened:
        await close_session(s)


async def test_turns_on_real_audio_with_voice_change_and_a_dropped_link(
    pulse: PulseStack, turn_wavs: list[Path], session_factory: Any, tmp_path: Path
) -> None:
    s = await session_factory(consent=True, faults="drop@2")
    c = s.controller
    recording = await asyncio.to_thread(SpeakerRecorder, pulse, tmp_path / "speaker.raw")
    try:
        assert await c.connect()
        await speak_turn(s, pulse, turn_wavs[0])
        assert await c.change_voice("Kore")
        for wav in turn_wavs[1:]:
            await speak_turn(s, pulse, wav)
    finally:
        heard = recording.stop()
    session_id = c.session_id
    assert session_id is not None
    out_csv = tmp_path / "timeline.csv"
    assert await c.export(str(out_csv))

    # The reply was heard at the speaker: seconds of clearly non-silent audio.
    loud = np.abs(heard.astype(np.int32)) > 500
    assert loud.sum() > 24000, f"only {loud.sum()} loud samples at the speaker"

    # Two readings per turn, in the store and in the CSV, also across the drop.
    expected = [(t, src) for t in (1, 2, 3) for src in ("acoustic", "model")]
    stored = s.store.readings(session_id)
    assert sorted((e.reading.turn, e.reading.source.value) for e in stored) == expected
    with out_csv.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted((int(r["turn"]), r["source"]) for r in rows) == expected
    assert sorted(s.estimator_calls) == [1, 2, 3]

    # The drop happened and was survived; the voice changed between turns 1 and 2.
    assert any(conn.dropped for conn in s.emulator.connections)
    assert NoticeKind.RECONNECTED in [n.kind for n in s.of(Notice)]
    voices = [
        json.dumps(conn.setup).count('"Kore"') > 0
        for conn in s.emulator.connections
        if conn.setup is not None
    ]
    assert voices[0] is False and voices[-1] is True

    latencies = {t.turn: t for t in s.of(TurnLatency)}
    assert sorted(latencies) == [1, 2, 3]
    for t in latencies.values():
        assert t.to_first_audio_s is not None and t.to_first_played_s is not None
        assert t.to_first_played_s >= t.to_first_audio_s
    assert len(s.of(ReadingAdded)) == 6


async def test_without_consent_nothing_emotional_anywhere_on_real_audio(
    pulse: PulseStack, turn_wavs: list[Path], session_factory: Any, tmp_path: Path
) -> None:
    s = await session_factory(consent=False, faults="")
    c = s.controller
    assert await c.connect()
    await speak_turn(s, pulse, turn_wavs[2])
    session_id = c.session_id
    assert session_id is not None
    out_csv = tmp_path / "timeline.csv"
    assert await c.export(str(out_csv))
    assert s.store.readings(session_id) == []
    assert out_csv.read_text(encoding="utf-8").count("\n") == 1  # the header alone
    assert s.estimator_calls == []
    assert s.of(ReadingAdded) == []
    for conn in s.emulator.connections:
        assert "report_user_emotion" not in json.dumps(conn.setup)
        assert all(turn.tool_call_id is None for turn in conn.turns)
    (turn,) = s.emulator.all_turns()
    spoken_s = read_wav(turn_wavs[2])[1]
    assert turn.audio_seconds >= spoken_s - 0.1, "the speech did not all reach the server"
    assert s.of(TurnLatency)[0].to_first_played_s is not None  # the reply still played


async def test_converse_with_device_uses_the_real_microphone(
    pulse: PulseStack, turn_wavs: list[Path], tmp_path: Path
) -> None:
    emulator = EmulatorServer(speed=4.0)
    await emulator.start()
    db = tmp_path / "h.db"
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "emodesk", "converse", "--device", "--turns", "one",
            "--audio-in", str(turn_wavs[2]), "--consent", "yes", "--db", str(db),
            "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=pulse.env(),
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        async with asyncio.timeout(60):
            first = (await proc.stdout.readline()).decode()
            assert first.startswith("session "), first
            prompt = (await proc.stdout.readline()).decode()
            assert prompt.startswith("speak now"), prompt
            # The turn is held for the file's length from now: speak it into the mic.
            await asyncio.to_thread(pulse.play_into_mic, turn_wavs[2])
            rest, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    finally:
        await emulator.stop()
    out = rest.decode()
    assert "reading (acoustic)" in out and "reading (model)" in out
    (turn,) = emulator.all_turns()
    assert turn.audio_seconds > 1.0  # the speech reached the server through the device
    peak = np.abs(np.frombuffer(bytes(turn.audio), dtype=np.int16)).max()
    assert peak > 1000, "the server got silence, not the speech played into the mic"
    with SessionStore(db) as store:
        (summary,) = store.sessions()
        assert len(store.readings(summary.session_id)) == 2
