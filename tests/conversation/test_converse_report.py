"""`emodesk report` on a history written by `emodesk converse` (a real process, the real
SDK over TLS to the emulator), where the user says an email address and a phone number:
neither reaches the history file, nor the transcript export, nor the report."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from emodesk.dsp.wav import write_wav
from emodesk.live.emulator.server import EmulatorServer
from emodesk.store import SessionStore
from tests.support.speech import CALM, NORMAL, speech_16k, with_silence

PACE = "10"
EMAIL, PHONE = "ada.lovelace@example.com", "+44 20 7946 0958"
HEARD = (f"My email is {EMAIL}.", f"Call me on {PHONE} tomorrow.")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    # Its stand-in for speech recognition hears the personal data in the spoken turns;
    # its reply repeats what it heard, so the model's lines carry it too.
    server = EmulatorServer(speed=float(PACE), hears=HEARD)
    await server.start()
    yield server
    await server.stop()


async def _run(*args: str) -> tuple[int, str, str]:
    env = dict(os.environ, EMODESK_CONVERSE_PACE=PACE, QT_QPA_PLATFORM="offscreen")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emodesk", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 100)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_report_on_a_conversation_with_personal_data(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    wav, db = tmp_path / "speech.wav", tmp_path / "history.sqlite3"
    pcm = with_silence(
        speech_16k("My email is on the form.", CALM),
        speech_16k("Call me tomorrow please.", NORMAL),
        gap_s=0.8,
    )
    write_wav(wav, pcm, 16000)
    code, out, err = await _run(
        "converse", "--audio-in", str(wav), "--consent", "yes", "--profile", "wellness",
        "--db", str(db), "--csv", str(tmp_path / "t.csv"),
        "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
    )  # fmt: skip
    assert code == 0, err

    store = SessionStore(db, named_by_user=True)
    try:
        (session,) = store.sessions()
        lines = [text for _, _, text in store.transcript(session.session_id)]
        assert any("[email]" in t for t in lines) and any("[phone]" in t for t in lines)
        store.export_transcript(session.session_id, tmp_path / "transcript.txt")
        store.export_session(session.session_id, tmp_path / "t.json", "json")
        digest = store.session_digest(session.session_id)
        assert digest.turns == 2 and digest.readings >= 2
    finally:
        store.close()

    today = date.today().isoformat()
    for name in ("day.pdf", "day.html"):
        code, out, err = await _run(
            "report", "--day", today, "--out", str(tmp_path / name), "--db", str(db)
        )
        assert code == 0, err
        assert "1 session(s)" in out
    pdf = pdf_text(tmp_path / "day.pdf")
    assert "Daily report" in pdf and "Not a diagnosis." in pdf and "Wellness" in pdf
    assert_nothing_personal(tmp_path, but=wav)


def pdf_text(path: Path) -> str:
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_nothing_personal(folder: Path, but: Path) -> None:
    """The history (with its WAL), the exports and the reports hold none of it."""
    written = b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file() and p != but)
    for secret in (EMAIL, PHONE, "7946 0958", "ada.lovelace"):
        assert secret.encode() not in written, secret
