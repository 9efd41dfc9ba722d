"""`emodesk analyze` end to end through the CLI entry point."""

import json
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


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not audio"), "not a WAV"),
        (lambda p: write_wav(p, np.zeros(16000, np.int16), 16000), "silent"),
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
