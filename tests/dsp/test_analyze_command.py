"""`emodesk analyze` end to end through the CLI entry point."""

import json
import os
import re
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emodesk.cli import main
from emodesk.core.export import read_timeline_csv
from emodesk.dsp.resample import resample
from emodesk.dsp.wav import write_wav
from tests.support.speech import (
    AGITATED,
    ALL_VOICES,
    CALM,
    SENTENCES,
    Voice,
    render,
    speech_16k,
    trimmed,
    with_silence,
)


def test_writes_one_reading_per_utterance_as_csv_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pcm = with_silence(speech_16k(SENTENCES[0], CALM), speech_16k(SENTENCES[1], AGITATED))
    wav = tmp_path / "in.wav"
    stereo = np.repeat(pcm, 2).reshape(-1, 2)  # stereo at 32 kHz: downmixed, resampled
    write_wav(wav, stereo, 32000)
    csv_path, json_path = tmp_path / "out.csv", tmp_path / "out.json"
    assert main(["analyze", str(wav), "--csv", str(csv_path), "--json", str(json_path)]) == 0
    rows = read_timeline_csv(csv_path.read_text(encoding="utf-8"))
    assert [r["turn"] for r in rows] == ["1", "2"]
    assert all(r["source"] == "acoustic" for r in rows)
    assert float(rows[1]["arousal"]) > float(rows[0]["arousal"])
    assert float(rows[0]["t_end_s"]) <= float(rows[1]["t_start_s"])
    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert len(document["readings"]) == 2
    table = capsys.readouterr().out
    assert "emotion" in table and len(table.strip().splitlines()) == 3


def _one_hertz_wav() -> bytes:
    """The reviewer's file: 32 KB of samples whose header claims 1 Hz (was 40 s and 4.5 GB)."""
    data = b"\x10\x00" * 16000
    fmt = struct.pack("<HHIIHH", 1, 1, 1, 2, 2, 16)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    return b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not audio"), "not a WAV"),
        (lambda p: write_wav(p, np.zeros(16000, np.int16), 16000), "silent"),
        (lambda p: p.write_bytes(_one_hertz_wav()), "sample rate of 1 Hz"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    path = tmp_path / "x.wav"
    make(path)  # type: ignore[operator]
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_noise_only_file_has_no_readings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "noise.wav"
    write_wav(path, np.random.default_rng(2).normal(0, 2000, 48000).astype(np.int16), 16000)
    csv_path = tmp_path / "o.csv"
    assert main(["analyze", str(path), "--csv", str(csv_path)]) == 0
    assert read_timeline_csv(csv_path.read_text(encoding="utf-8")) == []
    assert "no speech found" in capsys.readouterr().out


def _long_wav(path: Path) -> Path:
    rate = 48000
    speech = with_silence(*[speech_16k(s) for s in SENTENCES], gap_s=0.7)
    reps = int(np.ceil(31 * 16000 / speech.size))  # longer than PROGRESS_MIN_S
    mono = resample(np.tile(speech, reps)[: 31 * 16000], 16000, rate)
    stereo = np.repeat(mono, 2).reshape(-1, 2)  # 6 MB: several blocks
    write_wav(path, stereo, rate)
    return path


def test_long_file_shows_reading_and_analysing_progress_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["analyze", str(_long_wav(tmp_path / "long.wav"))]) == 0
    err = capsys.readouterr().err
    for label in ("reading", "analysing"):
        shown = [int(n) for n in re.findall(rf"{label} +\[[#.]{{30}}\] +(\d+)%", err)]
        assert len(shown) > 2 and shown == sorted(shown) and shown[-1] == 100, (label, shown)


def test_no_progress_bar_into_a_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(_long_wav(tmp_path / "long.wav"))]) == 0
    assert capsys.readouterr().err == ""


def test_a_truncated_file_is_read_as_far_as_it_goes_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = _long_wav(tmp_path / "whole.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    assert main(["analyze", str(cut)]) == 0
    err = capsys.readouterr().err
    assert "truncated" in err and "31.0 s" in err and "15.5 s" in err


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (["--csv", "{wav}"], "is the recording itself"),
        (["--json", "{dir}/./in.wav"], "is the recording itself"),
        (["--csv", "{dir}/o.txt", "--json", "{dir}/o.txt"], "give each its own file"),
        (["--csv", "{dir}/missing/o.csv"], "does not exist"),
        (["--json", "{dir}"], "is a folder"),
    ],
)
def test_outputs_are_checked_before_the_work_and_never_replace_the_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], outputs: list[str], message: str
) -> None:
    wav = tmp_path / "in.wav"
    write_wav(wav, (6000 * np.sin(np.arange(16000) / 10)).astype(np.int16), 16000)
    before = wav.read_bytes()
    args = [a.format(wav=wav, dir=tmp_path) for a in outputs]
    assert main(["analyze", str(wav), *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == "", "the analysis ran before the outputs were checked"
    assert wav.read_bytes() == before


def test_a_fifo_with_no_writer_is_refused_at_once(tmp_path: Path) -> None:
    """Was: `emodesk analyze` waited forever, silently, for a writer to the pipe."""
    fifo = tmp_path / "mic.wav"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "emodesk", "analyze", str(fifo)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"emodesk analyze: {fifo}: is a named pipe (FIFO), not a WAV file "
        "(save the audio to a file first)"
    )


def _float_wav_with_bad_samples(path: Path) -> None:
    t = np.arange(3 * 16000) / 16000
    samples = (0.2 * np.sin(2 * np.pi * 220 * t) * (t % 1.5 < 1.0)).astype("<f4")
    samples[1000:1010] = np.nan
    samples[2000:2002] = np.inf
    data = samples.tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data)


def test_samples_that_are_not_numbers_are_said_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = tmp_path / "float.wav"
    _float_wav_with_bad_samples(wav)
    assert main(["analyze", str(wav)]) == 0
    err = capsys.readouterr().err
    assert err == (
        f"emodesk analyze: {wav}: 12 samples were not numbers (NaN/Inf) and were set to 0\n"
    )


def test_exports_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    os.umask(0o022)  # the usual default; `main` sets the app's own
    wav = tmp_path / "in.wav"
    write_wav(wav, np.random.default_rng(3).normal(0, 2000, 32000).astype(np.int16), 16000)
    csv_path, json_path = tmp_path / "o.csv", tmp_path / "o.json"
    json_path.write_text("an older export, world-readable")
    json_path.chmod(0o644)
    assert main(["analyze", str(wav), "--csv", str(csv_path), "--json", str(json_path)]) == 0
    assert stat.S_IMODE(csv_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(json_path.stat().st_mode) == 0o600


@pytest.mark.parametrize("voice", ALL_VOICES, ids=str)
def test_a_short_clear_phrase_with_no_silence_around_it_gets_a_reading(
    voice: Voice, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1-2 s file that starts and ends with speech: one reading, never "no speech found"
    (neither the detector nor the estimator may drop it, a rough voice included)."""
    phrases = ("Thank you so much.", "Are you all alone now?", "We were away a year ago.")
    for n, text in enumerate(phrases):
        wav = tmp_path / f"{n}.wav"
        write_wav(wav, trimmed(render(text, voice)), 16000)
        assert main(["analyze", str(wav)]) == 0
        out = capsys.readouterr().out
        assert "no speech found" not in out, f"{voice} {text!r}"
        rows = [line for line in out.splitlines()[1:] if line.strip()]
        assert len(rows) == 1, f"{voice} {text!r}: {out}"
