"""`emodesk analyze` end to end through the CLI entry point."""

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from emodesk.cli import main
from emodesk.core.export import read_timeline_csv
from emodesk.dsp.wav import write_wav
from tests.support.speech import AGITATED, CALM, ESPEAK, SENTENCES, speech_16k, with_silence


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng (Debian package) is missing")
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


def test_long_file_shows_reading_and_analysing_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rate = 48000
    t = np.arange(31 * rate) / rate  # longer than PROGRESS_MIN_S: the bar is drawn
    bursts = np.where(t % 2.5 < 1.5, 6000 * np.sin(2 * np.pi * 200 * t), 0.0)
    stereo = np.repeat(bursts.astype(np.int16), 2).reshape(-1, 2)  # 6 MB: several blocks
    path = tmp_path / "long.wav"
    write_wav(path, stereo, rate)
    assert main(["analyze", str(path)]) == 0
    err = capsys.readouterr().err
    for label in ("reading", "analysing"):
        shown = [int(n) for n in re.findall(rf"{label} +\[[#.]{{30}}\] +(\d+)%", err)]
        assert len(shown) > 2 and shown == sorted(shown) and shown[-1] == 100, (label, shown)
