"""`emodesk evaluate DIR [--json] [--plot FILE.png]`: the local acoustic estimator on a
labelled corpus: per-class recall, unweighted average recall (UAR), arousal accuracy and
the confusion matrix.

Labels come from the file names of RAVDESS (`03-01-05-01-02-01-12.wav`: the third field
is the emotion, the last the actor) and CREMA-D (`1001_DFA_ANG_XX.wav`: actor, sentence,
emotion, level), found anywhere under DIR, or from a CSV of `path,label[,speaker]` rows
(DIR is then the CSV, or a folder holding `labels.csv`; paths are relative to the CSV).

Corpus labels map onto EmoDesk's five: neutral and calm are `neutral`, fearful is
`anxious`; disgust and surprise have no EmoDesk label and count only towards arousal
(surprise) or not at all (disgust). Arousal classes follow the circumplex: angry, happy,
fearful and surprised are high; sad, calm and neutral low; a reading is high when its
arousal is above 0.

Each speaker's files go through one estimator in a fixed shuffled order, as turns of one
session would: the first `warmup_turns` are judged against the prior, the rest against
the speaker's own baseline. A file with no speech in it counts as a miss ("none").
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from emodesk.core.emotion import Emotion

# The five EmoDesk labels, neutral first, then the circumplex from pleasant to tense.
LABELS = tuple(
    e.value for e in (Emotion.NEUTRAL, Emotion.HAPPY, Emotion.SAD, Emotion.ANGRY, Emotion.ANXIOUS)
)
NONE = "none"  # no reading (no speech found)

# Corpus labels -> EmoDesk label (None: no EmoDesk label) and arousal class.
CORPUS_LABELS: dict[str, tuple[str | None, str | None]] = {
    "neutral": ("neutral", "low"),
    "calm": ("neutral", "low"),
    "happy": ("happy", "high"),
    "sad": ("sad", "low"),
    "angry": ("angry", "high"),
    "fearful": ("anxious", "high"),
    "anxious": ("anxious", "high"),
    "surprised": (None, "high"),
    "disgust": (None, None),
}
ALIASES = {"fear": "fearful", "anger": "angry", "happiness": "happy", "sadness": "sad",
           "surprise": "surprised", "disgusted": "disgust"}  # fmt: skip

RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}  # fmt: skip
CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy",
                  "NEU": "neutral", "SAD": "sad"}  # fmt: skip
RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.wav$", re.I)
CREMA_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.wav$", re.I)


class CorpusError(Exception):
    pass


@dataclass(frozen=True)
class Item:
    path: Path
    label: str  # a key of CORPUS_LABELS
    speaker: str


def corpus_label(text: str) -> str:
    key = text.strip().lower()
    key = ALIASES.get(key, key)
    if key not in CORPUS_LABELS:
        known = ", ".join(sorted(CORPUS_LABELS))
        raise CorpusError(f"unknown label {text!r}; known: {known}")
    return key


def from_name(path: Path) -> Item | None:
    """The RAVDESS or CREMA-D label and speaker in a file name, or None."""
    m = RAVDESS_NAME.match(path.name)
    if m and m.group(3) in RAVDESS_EMOTIONS:
        return Item(path, RAVDESS_EMOTIONS[m.group(3)], f"ravdess-{m.group(7)}")
    m = CREMA_NAME.match(path.name)
    if m and m.group(3).upper() in CREMA_EMOTIONS:
        return Item(path, CREMA_EMOTIONS[m.group(3).upper()], f"crema-{m.group(1)}")
    return None


def from_csv(csv_path: Path) -> list[Item]:
    items = []
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if n == 1 and row[0].strip().lower() == "path":
                continue  # a header row
            if len(row) < 2:
                raise CorpusError(f"{csv_path}:{n}: expected path,label[,speaker]")
            try:
                label = corpus_label(row[1])
            except CorpusError as exc:
                raise CorpusError(f"{csv_path}:{n}: {exc}") from None
            path = (csv_path.parent / row[0].strip()).resolve()
            speaker = row[2].strip() if len(row) > 2 and row[2].strip() else "csv"
            items.append(Item(path, label, speaker))
    return items


def find_items(target: Path) -> tuple[list[Item], list[Path]]:
    """Labelled files of a corpus folder or CSV, and the WAVs whose names carry no label."""
    if target.is_file():
        if target.suffix.lower() != ".csv":
            raise CorpusError(f"{target} is neither a folder nor a CSV of path,label rows")
        return from_csv(target), []
    if not target.is_dir():
        raise CorpusError(f"{target} does not exist")
    if (target / "labels.csv").is_file():
        return from_csv(target / "labels.csv"), []
    items, unlabelled = [], []
    for path in sorted(target.rglob("*")):
        if path.suffix.lower() != ".wav" or not path.is_file():
            continue
        item = from_name(path)
        if item is None:
            unlabelled.append(path)
        else:
            items.append(item)
    return items, unlabelled


def _session_order(items: Iterable[Item]) -> list[Item]:
    """Each speaker's files in a fixed pseudo-random order (not grouped by emotion, as
    sorted RAVDESS names would be), speakers one after another."""
    return sorted(items, key=lambda i: (i.speaker, hashlib.sha1(i.path.name.encode()).digest()))


@dataclass
class Outcome:
    item: Item
    predicted: str  # an EmoDesk label or NONE
    arousal: float | None
    confidence: float | None


def estimate_all(
    items: list[Item], warmup_turns: int, progress: Any = None
) -> tuple[list[Outcome], list[str]]:
    """Outcomes per file (speaker by speaker, session order) and unreadable files' reasons."""
    from emodesk.dsp.estimator import AcousticEstimator
    from emodesk.dsp.prosody import extract_features
    from emodesk.dsp.wav import WavError, read_wav

    outcomes: list[Outcome] = []
    problems: list[str] = []
    estimators: dict[str, AcousticEstimator] = {}
    for done, item in enumerate(_session_order(items), start=1):
        try:
            pcm, _duration = read_wav(item.path)
        except (WavError, OSError) as exc:
            problems.append(f"{item.path}: {exc}")
            continue
        estimator = estimators.setdefault(
            item.speaker, AcousticEstimator(warmup_turns=warmup_turns)
        )
        est = estimator.assess(extract_features(pcm))
        if est is None:
            outcomes.append(Outcome(item, NONE, None, None))
        else:
            outcomes.append(Outcome(item, est.emotion.value, est.arousal, est.confidence))
        if progress is not None:
            progress(done)
    return outcomes, problems


@dataclass
class Report:
    files: int
    speakers: int
    classes: list[str]  # true EmoDesk labels present, in LABELS order
    confusion: dict[str, dict[str, int]]  # true -> predicted (LABELS + none) -> count
    recall: dict[str, float]
    uar: float
    arousal_accuracy: float
    arousal_files: int
    no_reading: int
    not_scored: dict[str, int] = field(default_factory=dict)  # corpus labels without one

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "speakers": self.speakers,
            "classes": self.classes,
            "recall": self.recall,
            "uar": self.uar,
            "arousal_accuracy": self.arousal_accuracy,
            "arousal_files": self.arousal_files,
            "no_reading": self.no_reading,
            "not_scored_for_labels": self.not_scored,
            "confusion": self.confusion,
            "confusion_columns": [*LABELS, NONE],
        }


def score(outcomes: list[Outcome]) -> Report:
    columns = [*LABELS, NONE]
    confusion: dict[str, dict[str, int]] = {}
    not_scored: dict[str, int] = {}
    right = judged = 0
    for o in outcomes:
        label, arousal_class = CORPUS_LABELS[o.item.label]
        if label is None:
            not_scored[o.item.label] = not_scored.get(o.item.label, 0) + 1
        else:
            row = confusion.setdefault(label, dict.fromkeys(columns, 0))
            row[o.predicted] += 1
        if arousal_class is not None:
            judged += 1
            said = None if o.arousal is None else ("high" if o.arousal > 0.0 else "low")
            right += said == arousal_class
    classes = [c for c in LABELS if c in confusion]
    confusion = {c: confusion[c] for c in classes}
    recall = {c: confusion[c][c] / max(1, sum(confusion[c].values())) for c in classes}
    return Report(
        files=len(outcomes),
        speakers=len({o.item.speaker for o in outcomes}),
        classes=classes,
        confusion=confusion,
        recall=recall,
        uar=sum(recall.values()) / len(recall) if recall else math.nan,
        arousal_accuracy=right / judged if judged else math.nan,
        arousal_files=judged,
        no_reading=sum(o.predicted == NONE for o in outcomes),
        not_scored=not_scored,
    )


def print_report(report: Report, out: TextIO) -> None:
    out.write(f"{report.files} files, {report.speakers} speakers\n\n")
    out.write(f"{'class':<9} {'files':>5} {'recall':>7}\n")
    for c in report.classes:
        out.write(f"{c:<9} {sum(report.confusion[c].values()):>5} {report.recall[c]:>7.1%}\n")
    chance = 1.0 / len(report.classes) if report.classes else math.nan
    out.write(f"\nunweighted average recall (UAR): {report.uar:.1%} (chance {chance:.1%})\n")
    out.write(
        f"arousal accuracy (high: angry/happy/fearful/surprised; low: sad/calm/neutral): "
        f"{report.arousal_accuracy:.1%} of {report.arousal_files} files\n"
    )
    if report.no_reading:
        out.write(f"no reading (no speech found): {report.no_reading} files\n")
    for label, n in sorted(report.not_scored.items()):
        out.write(f"{label}: {n} files have no EmoDesk label (arousal only, or not scored)\n")
    columns = [*LABELS, NONE]
    out.write("\nconfusion matrix (rows: true label, columns: estimated)\n")
    out.write(f"{'':<9}" + "".join(f"{c:>9}" for c in columns) + "\n")
    for c in report.classes:
        out.write(f"{c:<9}" + "".join(f"{report.confusion[c][p]:>9}" for p in columns) + "\n")


def plot_confusion(report: Report, path: Path) -> None:
    """The confusion matrix as a PNG heat map (row-normalised), drawn by Qt offscreen."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter

    _app = QGuiApplication.instance() or QGuiApplication(["emodesk evaluate"])
    columns = [*LABELS, NONE]
    cell, left, top = 90, 110, 80
    width = left + cell * len(columns) + 20
    height = top + cell * max(1, len(report.classes)) + 60
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont()
        font.setPixelSize(15)
        painter.setFont(font)
        painter.setPen(QColor("black"))
        title = f"UAR {report.uar:.1%}   arousal accuracy {report.arousal_accuracy:.1%}"
        painter.drawText(QRectF(0, 8, width, 24), Qt.AlignmentFlag.AlignCenter, title)
        painter.drawText(QRectF(left, 34, cell * len(columns), 20), Qt.AlignmentFlag.AlignCenter,
                         "estimated")  # fmt: skip
        for j, c in enumerate(columns):
            rect = QRectF(left + j * cell, top - 24, cell, 22)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, c)
        for i, true in enumerate(report.classes):
            row = report.confusion[true]
            total = max(1, sum(row.values()))
            painter.setPen(QColor("black"))
            right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            painter.drawText(QRectF(4, top + i * cell, left - 10, cell), right, true)
            for j, c in enumerate(columns):
                share = row[c] / total
                shade = round(255 * (1.0 - share))
                rect = QRectF(left + j * cell, top + i * cell, cell - 2, cell - 2)
                painter.fillRect(rect, QColor(shade, shade, 255))
                painter.setPen(QColor("white" if share > 0.5 else "black"))
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"{row[c]}\n{share:.0%}")
        painter.setPen(QColor("black"))
        painter.drawText(QRectF(0, height - 40, width, 30), Qt.AlignmentFlag.AlignCenter,
                         "rows: true label (share of the row)")  # fmt: skip
    finally:
        painter.end()
    if not image.save(str(path)):  # PNG by the suffix, checked before the work
        raise OSError(f"could not write {path}")


def run(args: argparse.Namespace) -> int:
    from emodesk.commands.analyze import _Progress

    target = Path(args.dir)
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        print(
            f"emodesk evaluate: --plot {args.plot}: the image is a PNG (FILE.png)", file=sys.stderr
        )
        return 2
    try:
        items, unlabelled = find_items(target)
    except (CorpusError, OSError) as exc:
        print(f"emodesk evaluate: {exc}", file=sys.stderr)
        return 2
    if not items:
        what = f"{len(unlabelled)} WAV files, none" if unlabelled else "no WAV files"
        print(
            f"emodesk evaluate: {target}: {what} named as RAVDESS (03-01-05-01-02-01-12.wav) "
            "or CREMA-D (1001_DFA_ANG_XX.wav) files; for other corpora give a CSV of "
            "path,label rows",
            file=sys.stderr,
        )
        return 2
    missing = [i.path for i in items if not i.path.is_file()]
    if missing:
        print(f"emodesk evaluate: {len(missing)} listed files do not exist, e.g. {missing[0]}",
              file=sys.stderr)  # fmt: skip
        return 2
    if unlabelled:
        print(f"emodesk evaluate: skipped {len(unlabelled)} WAV files whose names carry no "
              f"label, e.g. {unlabelled[0].name}", file=sys.stderr)  # fmt: skip
    bar = _Progress(len(items), sys.stderr, sys.stderr.isatty() and len(items) > 20, "files")
    outcomes, problems = estimate_all(items, args.warmup_turns, bar.update)
    bar.close()
    for problem in problems:
        print(f"emodesk evaluate: skipped {problem}", file=sys.stderr)
    if not outcomes:
        print("emodesk evaluate: no file could be read", file=sys.stderr)
        return 2
    report = score(outcomes)
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report, sys.stdout)
    if args.plot:
        try:
            plot_confusion(report, Path(args.plot))
        except OSError as exc:
            print(f"emodesk evaluate: {exc}", file=sys.stderr)
            return 1
    return 0
