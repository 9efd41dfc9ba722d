"""`emodesk evaluate` on small corpora synthesised here with RAVDESS and CREMA-D file names
and as a CSV of path,label rows; the metrics checked on outcomes whose answers are known."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from emodesk.cli import main
from emodesk.commands.evaluate import Item, Outcome, find_items, score
from emodesk.dsp.wav import write_wav
from tests.support.speech import AGITATED, CALM, NORMAL, Cues, Voice, render, speech_16k

STATEMENTS = ("Kids are talking by the door.", "Dogs are sitting by the door.")
# How each corpus emotion is rendered: high arousal loud, fast and high; low the opposite.
ESPEAK_STYLE = {"neutral": NORMAL, "calm": CALM, "happy": AGITATED, "sad": CALM,
                "angry": AGITATED, "fearful": AGITATED, "surprised": AGITATED,
                "disgust": NORMAL}  # fmt: skip
FLITE_STYLE = {"neutral": Cues(), "sad": Cues(tempo=0.75, pitch=-1, gain_db=-10.0),
               "angry": Cues(tempo=1.35, pitch=1), "happy": Cues(tempo=1.35, pitch=1),
               "fearful": Cues(tempo=1.35, pitch=1), "disgust": Cues()}  # fmt: skip
RAVDESS_CODES = {"neutral": "01", "calm": "02", "happy": "03", "sad": "04", "angry": "05",
                 "fearful": "06", "disgust": "07", "surprised": "08"}  # fmt: skip
CREMA_CODES = {"angry": "ANG", "disgust": "DIS", "fearful": "FEA", "happy": "HAP",
               "neutral": "NEU", "sad": "SAD"}  # fmt: skip


def _ravdess(root: Path) -> int:
    n = 0
    for actor, voice in (("01", "en"), ("02", "en+f3")):
        folder = root / f"Actor_{actor}"
        folder.mkdir(parents=True)
        for emotion, code in RAVDESS_CODES.items():
            for s, text in enumerate(STATEMENTS, start=1):
                name = f"03-01-{code}-01-0{s}-01-{actor}.wav"
                write_wav(folder / name, speech_16k(text, ESPEAK_STYLE[emotion], voice), 16000)
                n += 1
    return n


def _crema(root: Path) -> int:
    root.mkdir(parents=True, exist_ok=True)
    n = 0
    for emotion, code in CREMA_CODES.items():
        for sentence, text in (
            ("IEO", "It's eleven o'clock."),
            ("TIE", "That is exactly what happened."),
        ):
            pcm = render(text, Voice("flite", "awb"), FLITE_STYLE[emotion])
            write_wav(root / f"1001_{sentence}_{code}_XX.wav", pcm, 16000)
            n += 1
    return n


def test_evaluate_prints_the_report_for_ravdess_and_crema_d_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = _ravdess(tmp_path / "ravdess") + _crema(tmp_path / "crema")
    (tmp_path / "notes.wav").write_bytes(b"")  # a WAV whose name says nothing: skipped, said
    plot = tmp_path / "confusion.png"
    assert main(["evaluate", str(tmp_path), "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert f"{n} files, 3 speakers" in out
    assert "skipped 1 WAV files whose names carry no label, e.g. notes.wav" in captured.err
    for label in ("neutral", "happy", "sad", "angry", "anxious"):
        assert any(line.split()[:1] == [label] and "%" in line for line in out.splitlines())
    assert "unweighted average recall (UAR):" in out
    assert "disgust: 6 files have no EmoDesk label" in out  # 4 RAVDESS + 2 CREMA-D
    # The confusion matrix: a header of the five labels and "none", one row per class,
    # whose counts add up to the files that have an EmoDesk label.
    lines = out.splitlines()
    header = lines.index("confusion matrix (rows: true label, columns: estimated)") + 1
    assert lines[header].split() == ["neutral", "happy", "sad", "angry", "anxious", "none"]
    rows = {line.split()[0]: [int(x) for x in line.split()[1:]] for line in lines[header + 1 :]}
    assert set(rows) == {"neutral", "happy", "sad", "angry", "anxious"}
    assert sum(map(sum, rows.values())) == n - 6 - 4  # less disgust (6) and surprised (4)
    assert sum(rows["neutral"]) == 2 * 4 + 2  # RAVDESS neutral and calm, CREMA-D neutral
    # The estimator tells the loud, fast, high renderings from the quiet, slow, low ones.
    arousal = next(line for line in lines if line.startswith("arousal accuracy"))
    assert float(arousal.rsplit(": ", 1)[1].split("%")[0]) >= 75.0
    # A PNG of the matrix.
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 500 and height > 400


def test_evaluate_json_and_a_csv_of_paths_and_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    rows = ["path,label,speaker"]
    for i, (label, style) in enumerate((("neutral", NORMAL), ("angry", AGITATED), ("sad", CALM),
                                        ("fear", AGITATED), ("calm", CALM))):  # fmt: skip
        write_wav(clips / f"c{i}.wav", speech_16k(STATEMENTS[0], style, "en-us"), 16000)
        rows.append(f"clips/c{i}.wav,{label},spk1")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    assert main(["evaluate", str(labels), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == 5 and report["speakers"] == 1
    assert report["classes"] == ["neutral", "sad", "angry", "anxious"]
    assert report["confusion_columns"] == ["neutral", "happy", "sad", "angry", "anxious", "none"]
    assert sum(report["confusion"]["neutral"].values()) == 2  # neutral and calm
    assert report["arousal_files"] == 5
    assert 0.0 <= report["uar"] <= 1.0 and 0.0 <= report["arousal_accuracy"] <= 1.0
    # The folder holding labels.csv works as well.
    assert main(["evaluate", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 5


def test_metrics_on_known_outcomes() -> None:
    def outcome(label: str, predicted: str, arousal: float | None) -> Outcome:
        return Outcome(Item(Path(f"{label}-{predicted}.wav"), label, "s"), predicted, arousal, 0.5)

    outcomes = [
        outcome("angry", "angry", 0.6),
        outcome("angry", "happy", 0.4),
        outcome("sad", "sad", -0.5),
        outcome("sad", "neutral", 0.1),  # arousal wrong
        outcome("calm", "neutral", -0.1),
        outcome("fearful", "none", None),  # no reading: a miss everywhere
        outcome("surprised", "happy", 0.3),  # arousal only
        outcome("disgust", "angry", 0.5),  # not scored at all
    ]
    report = score(outcomes)
    assert report.classes == ["neutral", "sad", "angry", "anxious"]
    assert report.recall == {"neutral": 1.0, "sad": 0.5, "angry": 0.5, "anxious": 0.0}
    assert report.uar == pytest.approx(0.5)
    assert report.arousal_files == 7 and report.arousal_accuracy == pytest.approx(5 / 7)
    assert report.confusion["anxious"]["none"] == 1 and report.no_reading == 1
    assert report.not_scored == {"surprised": 1, "disgust": 1}


def test_names_that_are_not_the_corpora_conventions_are_not_labels(tmp_path: Path) -> None:
    for name in ("03-01-05-01-02-01-12.wav", "1001_DFA_ANG_XX.wav", "03-01-09-01-02-01-12.wav",
                 "1001_DFA_XYZ_XX.wav", "take1.wav"):  # fmt: skip
        write_wav(tmp_path / name, np.zeros(160, np.int16), 16000)
    items, unlabelled = find_items(tmp_path)
    assert sorted((i.path.name, i.label, i.speaker) for i in items) == [
        ("03-01-05-01-02-01-12.wav", "angry", "ravdess-12"),
        ("1001_DFA_ANG_XX.wav", "angry", "crema-1001"),
    ]
    assert sorted(p.name for p in unlabelled) == [
        "03-01-09-01-02-01-12.wav", "1001_DFA_XYZ_XX.wav", "take1.wav",
    ]  # fmt: skip


def test_evaluate_says_what_is_wrong_with_its_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no WAV files named as RAVDESS" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("a.wav,bored\n")
    assert main(["evaluate", str(bad)]) == 2
    assert "bad.csv:1: unknown label 'bored'" in capsys.readouterr().err
    missing = tmp_path / "missing.csv"
    missing.write_text("nowhere.wav,sad\n")
    assert main(["evaluate", str(missing)]) == 2
    assert "1 listed files do not exist" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing-here")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(missing), "--plot", str(tmp_path / "m.jpg")]) == 2
    assert "the image is a PNG" in capsys.readouterr().err
