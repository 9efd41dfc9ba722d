"""`emodesk converse --knowledge DIR` and `--course DIR` as a user runs them: a real
process, the real SDK over TLS to the emulator, which "hears" the spoken turns as a
script (`hears=`) so they cue the tools; the folders are indexed in the app's data
folder (here a temporary XDG_DATA_HOME), never in the folder itself."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from emodesk.dsp.wav import write_wav
from emodesk.live.emulator.server import EmulatorServer
from tests.support.speech import CALM, NORMAL, speech_16k, with_silence

PACE = "10"
pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def two_turns(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcm = with_silence(
        speech_16k("How long does a refund take?", CALM),
        speech_16k("And what about the router?", NORMAL),
        gap_s=0.8,
    )
    path = tmp_path_factory.mktemp("converse-kb") / "speech.wav"
    write_wav(path, pcm, 16000)
    return path


async def converse(data_home: Path, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ, EMODESK_CONVERSE_PACE=PACE, XDG_DATA_HOME=str(data_home))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emodesk", "converse", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 80)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def folder_of(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


async def converse_hearing(tmp_path: Path, hears: list[str], *args: str) -> tuple[int, str, str]:
    """`emodesk converse` against an emulator that hears `hears` as the turns' words,
    with its data under tmp_path/data and its history in tmp_path/h.db."""
    server = EmulatorServer(speed=float(PACE), hears=hears)
    await server.start()
    try:
        return await converse(
            tmp_path / "data", *args, "--db", str(tmp_path / "h.db"),
            "--endpoint", server.url, "--ca-file", server.ca_file,
        )  # fmt: skip
    finally:
        await server.stop()


async def test_converse_with_a_knowledge_folder_answers_from_it(
    two_turns: Path, tmp_path: Path
) -> None:
    kb = folder_of(
        tmp_path / "kb",
        {
            "refunds.md": "# Refunds\n\nA refund is paid within 14 days.\n",
            "router.txt": "Hold the router's reset button for ten seconds.\n",
        },
    )
    code, out, err = await converse_hearing(
        tmp_path, ["Search for refund days", "search for router reset"],
        "--audio-in", str(two_turns), "--profile", "support", "--knowledge", str(kb),
    )  # fmt: skip
    assert code == 0, err
    assert f"{kb}: 2 files indexed" in out
    assert "[turn 1] model:" in out and "(from refunds.md)." in out
    assert "(from router.txt)." in out
    assert sorted(p.name for p in kb.iterdir()) == ["refunds.md", "router.txt"]
    indexes = list((tmp_path / "data" / "emodesk" / "knowledge").glob("*.sqlite3"))
    assert len(indexes) == 1


async def test_converse_with_a_course_moves_through_its_topics(
    two_turns: Path, tmp_path: Path
) -> None:
    course = folder_of(
        tmp_path / "course",
        {"1-cells.md": "# Cells\n\nCells are small.\n", "2-dna.md": "# DNA\n\nDNA is code.\n"},
    )
    code, out, err = await converse_hearing(
        tmp_path, ["next topic", "got it, next topic"],
        "--audio-in", str(two_turns), "--profile", "tutor", "--course", str(course),
    )  # fmt: skip
    assert code == 0, err
    assert "topic: Cells (1-cells.md)" in out and "topic: DNA (2-dna.md)" in out
    assert out.index("topic: Cells") < out.index("topic: DNA")


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--knowledge", "{kb}"], "--knowledge is for the support profile"),
        (["--profile", "tutor", "--course", "{missing}"], "is not a folder"),
    ],
)
async def test_a_folder_that_cannot_serve_is_refused_before_connecting(
    two_turns: Path, tmp_path: Path, options: list[str], said: str
) -> None:
    kb = folder_of(tmp_path / "kb", {"a.md": "text"})
    args = [o.format(kb=kb, missing=tmp_path / "missing") for o in options]
    code, _, err = await converse(
        tmp_path / "data", "--audio-in", str(two_turns), "--db", str(tmp_path / "h.db"),
        "--endpoint", "wss://127.0.0.1:9/never", *args,
    )  # fmt: skip
    assert code == 1 and said in err
