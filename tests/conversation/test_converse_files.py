"""`emodesk converse` and the user's files, as a user runs it (a real process, the real
SDK over TLS to the emulator on loopback, paced 10x): the history, its WAL and SHM and
the exported timeline are private; a `--db` file that is not a history is refused and
left as it was; an export that cannot be written says where and why in one sentence;
float samples that are not numbers are said."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from emodesk.dsp.wav import write_wav
from emodesk.live.emulator.server import EmulatorServer
from tests.support.speech import speech_16k

PACE = "10"
REPO = str(Path(__file__).resolve().parents[2])
pytestmark = [
    pytest.mark.timeout(90),
]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(speed=float(PACE))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("converse-files") / "hello.wav"
    write_wav(path, speech_16k("Hello there, how are you?"), 16000)
    return path


async def _start(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emodesk", "converse", "--turns", "one", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "EMODESK_CONVERSE_PACE": PACE, **env},
    )  # fmt: skip


async def converse(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await _start(*args, env=env or {})
    out, err = await asyncio.wait_for(proc.communicate(), 80)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_history_and_the_timeline_are_private_and_an_open_folder_is_tightened(
    emulator: EmulatorServer, hello: Path, tmp_path: Path
) -> None:
    os.umask(0o022)  # the usual default, which made everything world-readable before
    data = tmp_path / "xdg" / "emodesk"  # the default history, where an older version left it
    data.mkdir(parents=True)
    old_copy = data / "history.damaged-20260101T000000Z.sqlite3"
    old_copy.write_bytes(b"kept from an earlier damaged file")
    old_copy.chmod(0o644)
    data.chmod(0o755)
    history = data / "history.sqlite3"
    out_csv = tmp_path / "t.csv"
    proc = await _start(
        "--audio-in", str(hello), "--consent", "yes", "--csv", str(out_csv),
        "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
        env={"XDG_DATA_HOME": str(tmp_path / "xdg")},
    )  # fmt: skip
    # The WAL and SHM live only while the history is open: look at them meanwhile.
    seen: dict[str, set[int]] = {"-wal": set(), "-shm": set()}
    communicate = asyncio.ensure_future(proc.communicate())
    while not communicate.done():
        for suffix, modes in seen.items():
            with contextlib.suppress(FileNotFoundError):
                modes.add(mode(Path(f"{history}{suffix}")))
        await asyncio.sleep(0.02)
    _, err = await asyncio.wait_for(communicate, 80)
    assert proc.returncode == 0, err.decode()
    assert seen == {"-wal": {0o600}, "-shm": {0o600}}
    assert mode(history) == 0o600
    assert mode(data) == 0o700
    assert mode(old_copy) == 0o600
    assert mode(out_csv) == 0o600
    assert len(out_csv.read_text(encoding="utf-8").splitlines()) >= 2  # a reading was written


async def test_a_db_that_is_not_a_history_is_refused_and_left_as_it_was(
    hello: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Buy milk.\nCall the dentist on Tuesday.\n")
    before = _snapshot(tmp_path)
    # Run in the notes' folder, as a user would type it; no endpoint is reachable at
    # port 9: the refusal comes before any connection.
    code, out, err = await _converse_in(tmp_path, "--audio-in", str(hello), "--db", "notes.txt")
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        "emodesk converse: --db notes.txt is not an EmoDesk history (not an SQLite database); "
        "nothing was changed"
    )
    assert "session " not in out
    assert _snapshot(tmp_path) == before


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


async def _converse_in(folder: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emodesk", "converse", *args, "--endpoint", "https://127.0.0.1:9",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=folder,
        env={**os.environ, "PYTHONPATH": REPO},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_an_export_that_fails_at_the_end_says_where_and_why_once(
    emulator: EmulatorServer, hello: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    out_csv = folder / "t.csv"
    proc = await _start(
        "--audio-in", str(hello), "--consent", "yes", "--csv", str(out_csv),
        "--db", str(tmp_path / "h.db"), "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
        env={},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    # The folder was there when converse checked it; a file takes its place mid-session.
    async with asyncio.timeout(60):
        while not (line := (await proc.stdout.readline()).decode()).startswith("session "):
            assert line, "converse ended before the session started"
    folder.rmdir()
    folder.write_text("a file where the folder was")
    _, err = await asyncio.wait_for(proc.communicate(), 80)
    assert proc.returncode == 1
    last = err.decode().strip().splitlines()[-1]
    assert last == f"emodesk converse: Could not write {out_csv}: {folder} is a file, not a folder"


async def test_float_samples_that_are_not_numbers_are_said(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    samples = speech_16k("Hello there, how are you?").astype(np.float32) / 32768.0
    samples[500:510] = np.nan
    samples[900:902] = [np.inf, -np.inf]
    path = tmp_path / "float.wav"
    _float_wav(path, samples, 16000)
    code, _, err = await converse(
        "--audio-in", str(path), "--db", str(tmp_path / "h.db"),
        "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
    )  # fmt: skip
    assert code == 0, err
    assert (
        f"emodesk converse: {path}: 12 samples were not numbers (NaN/Inf) and were set to 0"
        in err.splitlines()
    )


def _float_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data)
