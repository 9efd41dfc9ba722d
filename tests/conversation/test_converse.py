"""`emodesk converse` as a user runs it: a real process, the real SDK over TLS to the
emulator on loopback, the file streamed through push-to-talk turns (paced 10x)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from emodesk.dsp.wav import read_wav, write_wav
from emodesk.live.emulator.server import EmulatorServer
from emodesk.live.limits import MAX_TURN_TEXT_CHARS
from emodesk.store import SessionStore
from tests.support.speech import AGITATED, CALM, NORMAL, speech_16k, with_silence

PACE = "10"
pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def three_turns(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcm = with_silence(
        speech_16k("Hello, I need some help with my order.", CALM),
        speech_16k("It still has not arrived.", NORMAL),
        speech_16k("This is the third time, I am really angry now!", AGITATED),
        gap_s=0.8,
    )
    path = tmp_path_factory.mktemp("converse") / "speech.wav"
    write_wav(path, pcm, 16000)
    return path


@pytest.fixture
async def emulator(request: pytest.FixtureRequest) -> AsyncIterator[EmulatorServer]:
    faults = getattr(request, "param", "")
    server = EmulatorServer(speed=float(PACE), faults=faults)
    await server.start()
    yield server
    await server.stop()


async def converse(*args: str) -> tuple[int, str, str]:
    return await _run(sys.executable, "-m", "emodesk", "converse", *args)


async def _run(*command: str) -> tuple[int, str, str]:
    env = dict(os.environ, EMODESK_CONVERSE_PACE=PACE)
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 80)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("emulator", ["drop@2"], indirect=True)
async def test_consented_conversation_survives_a_drop_with_two_readings_per_turn(
    emulator: EmulatorServer, three_turns: Path, tmp_path: Path
) -> None:
    out_csv, out_wav, db = tmp_path / "t.csv", tmp_path / "reply.wav", tmp_path / "h.db"
    code, out, err = await converse(
        "--audio-in", str(three_turns), "--audio-out", str(out_wav), "--consent", "yes",
        "--voice", "Kore", "--csv", str(out_csv), "--db", str(db),
        "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
    )  # fmt: skip
    assert code == 0, err
    assert "offline demo" not in err
    assert "notice (reconnecting)" in err  # the drop happened and was shown
    assert len(emulator.connections) >= 2
    rows = csv_rows(out_csv)
    assert sorted((r["turn"], r["source"]) for r in rows) == [
        (str(t), s) for t in (1, 2, 3) for s in ("acoustic", "model")
    ]
    with SessionStore(db) as store:
        (summary,) = store.sessions()
        stored = store.readings(summary.session_id)
    assert len(stored) == 6
    assert all(r["session_id"] == summary.session_id for r in rows)
    assert out.count("latency: first reply audio") == 3
    assert "latency over 3 turns" in out
    played, rate = read_wav(out_wav)
    assert rate > 0 and played.size > 16000  # seconds of reply audio, resampled to 16 kHz
    assert all(
        c.setup is not None and json.dumps(c.setup).count("Kore") for c in emulator.connections
    )


async def test_declined_consent_leaves_nothing_emotional_anywhere(
    emulator: EmulatorServer, three_turns: Path, tmp_path: Path
) -> None:
    out_csv, db = tmp_path / "t.csv", tmp_path / "h.db"
    code, out, err = await converse(
        "--audio-in", str(three_turns), "--consent", "no", "--csv", str(out_csv),
        "--db", str(db), "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
    )  # fmt: skip
    assert code == 0, err
    assert csv_rows(out_csv) == []
    assert out_csv.read_text(encoding="utf-8").startswith("session_id,turn,source,")
    with SessionStore(db) as store:
        (summary,) = store.sessions()
        assert store.readings(summary.session_id) == []
        assert len(store.transcript(summary.session_id)) == 6  # words are kept, feelings not
    for conn in emulator.connections:
        setup = json.dumps(conn.setup)
        assert "report_user_emotion" not in setup
        assert all(turn.tool_call_id is None for turn in conn.turns)
    assert "reading (" not in out and "0 readings" in out
    assert out.count("latency: first reply audio") == 3


async def test_failures_exit_non_zero_with_the_reason(three_turns: Path, tmp_path: Path) -> None:
    code, _, err = await converse("--audio-in", str(tmp_path / "missing.wav"))
    assert code == 1 and "cannot read --audio-in" in err
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16000, dtype=np.int16), 16000)
    code, _, err = await converse("--audio-in", str(silent))
    assert code == 1 and "no speech found" in err
    code, _, err = await converse("--audio-in", str(three_turns), "--endpoint", "ws://127.0.0.1:9")
    assert code == 1 and "plain ws:// is not supported" in err


async def test_kill_9_mid_session_keeps_every_reading_shown_so_far(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    phrases = [f"This is sentence number {n}." for n in range(1, 9)]
    long_file = tmp_path / "long.wav"
    write_wav(long_file, with_silence(*(speech_16k(p) for p in phrases), gap_s=0.8), 16000)
    db = tmp_path / "h.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emodesk", "converse", "--audio-in", str(long_file),
        "--consent", "yes", "--db", str(db),
        "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=dict(os.environ, EMODESK_CONVERSE_PACE=PACE),
    )  # fmt: skip
    assert proc.stdout is not None
    shown = 0
    try:
        async with asyncio.timeout(60):
            while shown < 5:
                line = (await proc.stdout.readline()).decode()
                assert line, "converse ended before the kill"
                shown += "reading (" in line
    finally:
        proc.kill()  # SIGKILL: no clean-up of any kind
        await proc.wait()
    assert proc.returncode == -9
    with SessionStore(db) as store:
        (summary,) = store.sessions()
        assert summary.ended_utc is None
        assert len(store.readings(summary.session_id)) >= shown


async def test_a_rejected_key_exits_non_zero_with_the_reason(
    three_turns: Path, tmp_path: Path
) -> None:
    async with EmulatorServer(api_keys={"the-right-key"}) as server:
        code, _, err = await converse(
            "--audio-in", str(three_turns), "--db", str(tmp_path / "h.db"),
            "--endpoint", server.url, "--ca-file", server.ca_file,
        )  # fmt: skip
    assert code == 1
    assert "emodesk converse: cannot connect:" in err
    assert "notice (invalid_key)" in err


async def test_wellness_profile_prints_a_session_report_without_the_transcript(
    emulator: EmulatorServer, three_turns: Path, tmp_path: Path
) -> None:
    code, out, err = await converse(
        "--audio-in", str(three_turns), "--consent", "yes", "--profile", "wellness",
        "--db", str(tmp_path / "h.db"),
        "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
    )  # fmt: skip
    assert code == 0, err
    report = out[out.index("EmoDesk session report") :]
    assert "Profile: Wellness check-in" in report
    assert "model: 3 " in report and "acoustic: 3 " in report
    assert "not a diagnosis" in report
    assert "Synthetic reply" not in report  # counts and trends only, no transcript


async def test_other_profiles_print_no_session_report(
    emulator: EmulatorServer, three_turns: Path, tmp_path: Path
) -> None:
    code, out, err = await converse(
        "--audio-in", str(three_turns), "--consent", "yes", "--profile", "support",
        "--db", str(tmp_path / "h.db"),
        "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
    )  # fmt: skip
    assert code == 0, err
    assert "EmoDesk session report" not in out


async def test_losing_the_connection_mid_turn_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """The server goes away early in a 300 s turn (30 s at the test pace): the session
    gives up reconnecting long before the turn would end, and converse says so at once
    (it used to wait for a microphone the failure had stopped, then crash)."""
    noise = np.random.default_rng(1).integers(-3000, 3000, 300 * 16000).astype(np.int16)
    long_turn = tmp_path / "long.wav"
    write_wav(long_turn, noise, 16000)
    server = EmulatorServer(speed=float(PACE))
    await server.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emodesk", "converse", "--audio-in", str(long_turn),
        "--turns", "one", "--consent", "yes", "--db", str(tmp_path / "h.db"),
        "--endpoint", server.url, "--ca-file", server.ca_file,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, EMODESK_CONVERSE_PACE=PACE),
    )  # fmt: skip
    try:
        await server.wait_until(
            lambda: any(t.audio_seconds > 3.0 for t in server.all_turns()), within_s=30
        )
    finally:
        await server.stop()
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    errors = err.decode()
    assert proc.returncode == 1, errors
    assert "Traceback" not in errors
    (last,) = [line for line in errors.splitlines() if line.startswith("emodesk converse:")]
    assert "cannot reach the server" in last or "connection" in last, errors
    assert "[turn 1] model:" not in out.decode()  # the turn was never answered


async def test_a_damaged_history_is_reported_and_the_conversation_goes_on(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app's own history (no --db); a file named with --db is refused instead.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    db = tmp_path / "xdg" / "emodesk" / "history.sqlite3"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database at all" * 100)
    short = tmp_path / "short.wav"
    write_wav(short, speech_16k("Hello there."), 16000)
    code, _, err = await converse(
        "--audio-in", str(short), "--turns", "one",
        "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
    )  # fmt: skip
    assert code == 0, err
    with SessionStore(db) as store:
        assert len(store.sessions()) == 1  # a fresh history took the damaged one's place
    kept = [name for name in os.listdir(db.parent) if name.startswith("history.damaged")]
    assert kept, os.listdir(db.parent)
    report = [line for line in err.splitlines() if kept[0] in line]
    assert report and report[0].startswith("emodesk converse: "), err


async def test_outputs_that_cannot_be_written_fail_before_connecting(
    three_turns: Path, tmp_path: Path
) -> None:
    # No endpoint is reachable at port 9: had it tried to connect, the error would differ.
    missing = tmp_path / "nope"
    for option in ("--csv", "--audio-out"):
        code, out, err = await converse(
            "--audio-in", str(three_turns), option, str(missing / "x"),
            "--endpoint", "https://127.0.0.1:9",
        )  # fmt: skip
        assert code == 1
        assert err.strip().splitlines()[-1] == (
            f"emodesk converse: cannot write {option}: The folder {missing} does not exist"
        )
        assert "session " not in out


async def test_device_mode_without_a_microphone_fails_before_connecting(
    three_turns: Path, tmp_path: Path
) -> None:
    env = dict(os.environ, PULSE_SERVER=f"unix:{tmp_path}/no-server", EMODESK_CONVERSE_PACE=PACE)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emodesk", "converse", "--audio-in", str(three_turns),
        "--device", "--endpoint", "https://127.0.0.1:9",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert err.decode().strip().splitlines()[-1] == (
        "emodesk converse: --device: no input audio device (see `emodesk devices`)"
    )
    assert out.decode() == ""


async def test_an_unusable_api_key_is_refused_before_connecting(
    three_turns: Path, tmp_path: Path
) -> None:
    env_key = "AIza" + "x" * 20 + " with a space"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emodesk", "converse", "--audio-in", str(three_turns),
        "--db", str(tmp_path / "h.db"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, GEMINI_API_KEY=env_key, EMODESK_CONVERSE_PACE=PACE),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    message = err.decode()
    assert "GEMINI_API_KEY" in message and "Traceback" not in message
    assert env_key not in message and env_key not in out.decode()


# Every fault the emulator offers, at turn 2 of 3. The conversation either answers all
# three turns (the turn is sent again after a lost link, a bad frame is skipped) or
# names the turn it could not deliver and exits 3 with the others answered.
ANSWERED_DESPITE = ["drop", "goaway", "goawayreply", "close1011", "close1007", "slow",
                    "burst", "malformed", "droptool", "dropreply", "badreply", "oddpcm",
                    "badrate"]  # fmt: skip
LINK_LOST_BY = {"drop", "goaway", "goawayreply", "close1011", "close1007", "droptool",
                "dropreply"}  # fmt: skip


@pytest.mark.parametrize("fault", ANSWERED_DESPITE)
async def test_three_utterances_are_three_answered_turns_whatever_the_fault(
    fault: str, three_turns: Path, tmp_path: Path
) -> None:
    async with _emulator_with(f"{fault}@2") as server:
        code, out, err = await converse(
            "--audio-in", str(three_turns), "--consent", "yes", "--db", str(tmp_path / "h.db"),
            "--csv", str(tmp_path / "t.csv"),
            "--endpoint", server.url, "--ca-file", server.ca_file,
        )  # fmt: skip
    assert code == 0, err
    assert "answered 3 of 3 turns" in out, out
    for turn in (1, 2, 3):
        assert f"[turn {turn}] model: Synthetic reply" in out, out
    assert "[turn 4]" not in out  # no turn split, none counted twice
    if fault in LINK_LOST_BY:
        assert len(server.connections) >= 2  # the fault really cut the link
    # The server answered turn 2 once to completion (not twice, not never).
    completed = [t.number for t in server.all_turns() if t.completed]
    assert completed == [1, 2, 3], completed
    rows = csv_rows(tmp_path / "t.csv")
    assert sorted({int(r["turn"]) for r in rows}) == [1, 2, 3]


async def test_a_turn_whose_reply_stalls_is_named_and_the_others_are_answered(
    three_turns: Path, tmp_path: Path
) -> None:
    out_wav, out_csv = tmp_path / "reply.wav", tmp_path / "t.csv"
    async with _emulator_with("stall@2") as server:
        code, out, err = await converse(
            "--audio-in", str(three_turns), "--consent", "yes", "--db", str(tmp_path / "h.db"),
            "--csv", str(out_csv), "--audio-out", str(out_wav),
            "--endpoint", server.url, "--ca-file", server.ca_file,
        )  # fmt: skip
    assert code == 3, err
    assert "[turn 2] not answered: no reply for" in out, out
    assert "answered 2 of 3 turns; not answered: turn 2 (no reply for" in out, out
    assert "[turn 1] model:" in out and "[turn 3] model:" in out
    assert out_wav.exists() and out_csv.exists()  # written for what was received
    assert {int(r["turn"]) for r in csv_rows(out_csv)} >= {1, 3}


@contextlib.asynccontextmanager
async def _emulator_with(faults: str) -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(speed=float(PACE), faults=faults)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# A normal three-turn conversation peaks at about 100 MB here; without the limits a reply
# flood reached 6.7 GB in 60 s and a transcript flood 24 GB.
FLOOD_PEAK_LIMIT_MB = 250
# A transcript flood counts once it sent five times the text limit that cut it off: on a
# busy machine the client cuts it off before the emulator has sent 1 MB (513 kB once).
FLOODED_PAST = {"flood@1": 20_000_000, "textflood@1": 5 * MAX_TURN_TEXT_CHARS}


@pytest.mark.parametrize("fault", ["flood@1", "textflood@1"])
async def test_a_flooding_server_is_cut_off_with_memory_bounded(
    fault: str, three_turns: Path, tmp_path: Path
) -> None:
    out_wav = tmp_path / "reply.wav"
    async with _emulator_with(fault) as server:
        code, out, err, peak_mb = await converse_measured(
            "--audio-in", str(three_turns), "--consent", "yes", "--db", str(tmp_path / "h.db"),
            "--audio-out", str(out_wav), "--endpoint", server.url, "--ca-file", server.ca_file,
        )  # fmt: skip
        # It really flooded: well past the limit that cut it off (the reply audio limit is
        # ~20 MB of frames, the transcript limit ~50 kB).
        assert server.all_turns()[0].reply_bytes > FLOODED_PAST[fault]
    assert code == 3, err
    assert "answered 2 of 3 turns; not answered: turn 1 (the " in out, out
    assert peak_mb < FLOOD_PEAK_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
    assert out_wav.exists()


async def converse_measured(*args: str) -> tuple[int, str, str, float]:
    """`converse` run under a small parent that reports its peak RSS (the parent's only
    child, so the figure is converse's own)."""
    parent = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run(sys.argv[1:]).returncode\n"
        "kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(f'peak_rss_kb={kb}', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    code, out, err = await _run(sys.executable, "-c", parent, sys.executable, "-m", "emodesk",
                                "converse", *args)  # fmt: skip
    (line,) = [x for x in err.splitlines() if x.startswith("peak_rss_kb=")]
    return code, out, err, int(line.split("=")[1]) / 1024


@pytest.mark.parametrize("fault", ["goawaysetup@*", "goaway@*"])
async def test_a_server_that_always_goes_away_ends_in_bounded_tries_and_exit_1(
    fault: str, three_turns: Path, tmp_path: Path
) -> None:
    async with _emulator_with(fault) as server:
        code, out, err = await converse(
            "--audio-in", str(three_turns), "--db", str(tmp_path / "h.db"),
            "--csv", str(tmp_path / "t.csv"),
            "--endpoint", server.url, "--ca-file", server.ca_file,
        )  # fmt: skip
        connections = len(server.connections)
    assert code == 1, err
    assert connections <= 8  # the default policy: 6 tries in a row, not thousands
    last = err.strip().splitlines()[-1]
    assert last.startswith("emodesk converse: ") and "gave up after 6 tries" in last, err
    assert "answered 0 of 3 turns" in out, out
    assert (tmp_path / "t.csv").exists()  # written for what was received (nothing)


async def test_the_demos_model_and_the_acoustic_estimator_are_two_judges(
    three_turns: Path, tmp_path: Path
) -> None:
    """The emulator's "model" reading is its own loudness rule, not the app's estimator,
    so the timeline's two tracks can disagree (on this recording they do)."""
    out_csv = tmp_path / "t.csv"
    async with _emulator_with("") as server:
        code, _, err = await converse(
            "--audio-in", str(three_turns), "--consent", "yes", "--db", str(tmp_path / "h.db"),
            "--csv", str(out_csv), "--endpoint", server.url, "--ca-file", server.ca_file,
        )  # fmt: skip
    assert code == 0, err
    by_turn: dict[int, dict[str, str]] = {}
    for row in csv_rows(out_csv):
        by_turn.setdefault(int(row["turn"]), {})[row["source"]] = row["emotion"]
    assert sorted(by_turn) == [1, 2, 3] and all(len(v) == 2 for v in by_turn.values())
    assert any(v["model"] != v["acoustic"] for v in by_turn.values()), by_turn
