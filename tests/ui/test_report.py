"""The daily/weekly report from a real history file with nine days of sessions: its
charts as images, the HTML page, the PDF (its text read back by pdftotext), and
`emodesk report` writing both."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from emodesk import cli
from emodesk.core.history import period
from emodesk.store import SessionStore
from emodesk.ui import theme
from emodesk.ui.report import affect_chart, gather_report, mix_chart, render_html, write_report
from tests.support.history_days import fill_history

TODAY = date.today()


@pytest.fixture
def history(tmp_path: Path, qapp: QApplication) -> Iterator[SessionStore]:
    store = SessionStore(tmp_path / "history.sqlite3")
    fill_history(store, TODAY)
    yield store
    store.close()


def pdf_text(path: Path) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return done.stdout


def colours_in(image: QImage) -> set[str]:
    return {
        QColor(image.pixel(x, y)).name()
        for x in range(0, image.width(), 3)
        for y in range(0, image.height(), 3)
    }


def test_mix_chart_draws_each_emotion_of_the_week(history: SessionStore) -> None:
    report = gather_report(history, *period(TODAY, 7))
    image = mix_chart(report.days)
    assert (image.width(), image.height()) == (900, 300)
    seen = colours_in(image)
    present = {e for e, n in report.mix.items() if n}
    assert {theme.emotion_colour(e) for e in present} <= seen
    # The quiet day (three days back) has no bar: its column holds no emotion colour.
    quiet_index = [d.day for d in report.days].index(TODAY - timedelta(days=3))
    assert report.days[quiet_index].readings == 0


def test_affect_chart_draws_both_lines(history: SessionStore) -> None:
    report = gather_report(history, *period(TODAY, 7))
    seen = colours_in(affect_chart(report.days))
    assert {"#e07a2e", "#2e8b57"} <= seen


def test_html_is_standalone_with_charts_and_disclaimer(history: SessionStore) -> None:
    report = gather_report(history, *period(TODAY, 7))
    page = render_html(report)
    assert page.count('src="data:image/png;base64,') == 2
    assert "Not a diagnosis." in page
    assert "sessions in a row ended persistent negative" in page
    assert ">Days</h2>" in page  # a week's many sessions: a row per day, on one page
    today = render_html(gather_report(history, TODAY, TODAY))
    assert ">Sessions</h2>" in today and "Wellness check-in" in today
    assert "ada.lovelace" not in page and "[email]" not in page  # no transcript at all


def test_pdf_text_says_what_the_report_says(history: SessionStore, tmp_path: Path) -> None:
    report = gather_report(history, *period(TODAY, 7))
    out = tmp_path / "week.pdf"
    write_report(report, out)
    assert out.read_bytes().startswith(b"%PDF")
    assert "Pages: 1" in " ".join(
        subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True).stdout.split()
    )
    text = " ".join(pdf_text(out).split())
    assert report.title.replace("—", "").split()[0] in text
    assert "Not a diagnosis." in text
    assert f"{len(report.sessions)} session(s)" in text
    assert "sessions in a row ended persistent negative" in text
    assert "Emotion mix per day" not in text  # the charts are images, not text
    assert re.search(r"Trend over the period: worsening", text)


def test_one_day_report(history: SessionStore, tmp_path: Path) -> None:
    report = gather_report(history, TODAY, TODAY)
    assert report.title.startswith("Daily report")
    assert len(report.days) == 1 and report.sessions
    out = tmp_path / "today.pdf"
    write_report(report, out)
    assert "Daily report" in pdf_text(out)


def test_the_command_writes_html_and_pdf(
    history: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(history.path)
    html_out, pdf_out = tmp_path / "r.html", tmp_path / "r.pdf"
    assert cli.main(["report", "--days", "7", "--out", str(html_out), "--db", db]) == 0
    assert "Not a diagnosis." in html_out.read_text()
    day = (TODAY - timedelta(days=1)).isoformat()
    assert cli.main(["report", "--day", day, "--out", str(pdf_out), "--db", db]) == 0
    assert "Daily report" in pdf_text(pdf_out)
    assert "session(s)" in capsys.readouterr().out
    assert cli.main(["report", "--out", str(tmp_path / "r.txt"), "--db", db]) == 2
    assert cli.main(["report", "--days", "0", "--out", str(html_out), "--db", db]) == 2
    assert cli.main(["report", "--out", str(html_out), "--db", str(tmp_path / "none")]) == 2
    with pytest.raises(SystemExit):
        cli.main(["report", "--day", "yesterday", "--out", str(html_out)])
