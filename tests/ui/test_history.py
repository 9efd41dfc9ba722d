"""The History window over a real history file with nine days of sessions (one quiet
day): sessions by day, one session's timeline and transcript, the 7/30/90-day charts,
exports, deleting a session, and the toolbar's History action."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from emodesk.core.history import daily_stats, day_bounds, period
from emodesk.store import SessionStore
from emodesk.ui.history import HistoryWindow
from emodesk.ui.main_window import MainWindow
from tests.support.history_days import fill_history
from tests.support.qt import dispose, run, until

TODAY = date.today()


@pytest.fixture
def history(tmp_path: Path) -> Iterator[SessionStore]:
    store = SessionStore(tmp_path / "history.sqlite3")
    yield store
    store.close()


@pytest.fixture
def ids(history: SessionStore) -> list[str]:
    return fill_history(history, TODAY)


@pytest.fixture
def win(qtbot: Any, history: SessionStore, ids: list[str]) -> Iterator[HistoryWindow]:
    window = HistoryWindow(history, today=lambda: TODAY)
    window.show()
    qtbot.waitExposed(window)
    yield window
    dispose(window)


def test_sessions_listed_by_day_newest_first(win: HistoryWindow, ids: list[str]) -> None:
    tree = win.sessions
    assert tree.topLevelItemCount() == 8  # nine days, one without sessions
    newest_day = tree.topLevelItem(0)
    assert newest_day is not None
    assert newest_day.text(0) == f"{TODAY:%a %d %b %Y}"
    assert newest_day.text(1) == "1 session(s)"
    rows = win.session_items()
    assert [r.data(0, Qt.ItemDataRole.UserRole) for r in rows] == ids[::-1]
    first = rows[0]
    digest = win.digests[0]
    assert first.text(1) == "Wellness check-in"
    assert first.text(3) == str(digest.turns)
    assert first.text(2).endswith(" s") and "min" in first.text(2)
    assert first.text(4) == digest.mix_text() and first.text(4)


def test_choosing_a_session_shows_its_timeline_and_transcript(
    win: HistoryWindow, ids: list[str], history: SessionStore
) -> None:
    assert not win.delete_button.isEnabled()
    win.select_session(ids[0])
    readings = history.readings(ids[0])
    assert len(win.timeline.data.readings) == len(readings) > 0
    # The whole session is in view, not the last 90-second page.
    x0, x1 = win.timeline.plot_widget.getPlotItem().viewRange()[0]
    assert x0 <= 0 and x1 >= max(e.reading.t_end_s for e in readings)
    shown = win.transcript.toPlainText()
    assert shown.startswith("[1] You: I'm [email], call me on [phone]")
    assert "ada.lovelace" not in shown
    assert win.delete_button.isEnabled()
    assert "turn(s)" in win.heading.text()


def test_charts_follow_the_store_for_7_30_and_90_days(
    win: HistoryWindow, history: SessionStore
) -> None:
    for days in (7, 30, 90):
        win.show_days(days)
        first, last = period(TODAY, days)
        since, until_ = day_bounds(first, last)
        expected = daily_stats(
            history.session_digests(since, until_),
            history.reading_points(since, until_),
            first,
            last,
        )
        assert len(win.chart.days) == days
        assert win.chart.mix_heights("sad") == pytest.approx([d.share("sad") for d in expected])
        assert win.chart.line_values("acoustic", "valence") == pytest.approx(
            [d.valence["acoustic"] for d in expected]
        )
        assert win.chart.line_values("model", "arousal") == [None] * days
        assert win.period_buttons.checkedId() == days
    win.show_days(7)
    quiet = win.chart.days.index(next(d for d in win.chart.days if d.day == TODAY - timedelta(3)))
    assert win.chart.line_values("acoustic", "arousal")[quiet] is None
    stacked = [sum(win.chart.mix_heights(e)[-1] for e in ("happy", "sad", "angry", "anxious"))]
    assert stacked[0] + win.chart.mix_heights("neutral")[-1] == pytest.approx(1.0)
    assert "not a diagnosis" in win.period_summary.text()


def test_exports_write_the_chosen_session(
    win: HistoryWindow, ids: list[str], tmp_path: Path, qloop: asyncio.AbstractEventLoop
) -> None:
    win.select_session(ids[0])
    for fmt, name in (("csv", "t.csv"), ("json", "t.json"), ("transcript", "t.txt")):
        run(qloop, win.export_to(str(tmp_path / name), fmt))
    assert (tmp_path / "t.csv").read_text().startswith("session_id,turn,source")
    assert ids[0] in (tmp_path / "t.json").read_text()
    text = (tmp_path / "t.txt").read_text()
    assert "[email]" in text and "[phone]" in text and "ada.lovelace" not in text
    dialog = win.open_export_dialog("transcript")
    assert dialog.defaultSuffix() == "txt"
    dialog.close()


def test_deleting_a_session_after_confirming(
    win: HistoryWindow, ids: list[str], history: SessionStore, qloop: asyncio.AbstractEventLoop
) -> None:
    win.select_session(ids[-1])
    before = sum(d.sessions for d in win.chart.days)
    box = win.confirm_delete()
    assert box is not None and "cannot be undone" in box.text()
    deleted: list[str] = []
    win.session_deleted.connect(deleted.append)
    yes = box.button(QMessageBox.StandardButton.Yes)
    assert yes is not None
    yes.click()
    run(qloop, until(lambda: bool(deleted)))
    assert deleted == [ids[-1]]
    assert ids[-1] not in [d.session_id for d in history.session_digests()]
    assert len(win.session_items()) == len(ids) - 1
    assert win.selected is None and not win.delete_button.isEnabled()
    assert sum(d.sessions for d in win.chart.days) == before - 1


def test_cancel_keeps_the_session(win: HistoryWindow, ids: list[str]) -> None:
    win.select_session(ids[0])
    box = win.confirm_delete()
    assert box is not None
    cancel = box.button(QMessageBox.StandardButton.Cancel)
    assert cancel is not None
    cancel.click()
    assert len(win.session_items()) == len(ids)


def test_empty_history(qtbot: Any, history: SessionStore) -> None:
    window = HistoryWindow(history, today=lambda: TODAY)
    try:
        assert window.session_items() == []
        assert window.chart.mix_heights("happy") == [0.0] * 7
        assert "0 session(s)" in window.period_summary.text()
    finally:
        dispose(window)


def test_toolbar_history_opens_the_window(
    window: MainWindow, history: SessionStore, ids: list[str]
) -> None:
    assert window.toolbar.history_action.text() == "History"
    window.toolbar.history_action.trigger()  # no history yet: says so
    assert window.history_window is None
    window.services.history = history
    window.toolbar.history_action.trigger()
    opened = window.history_window
    assert opened is not None and opened.isVisible()
    assert len(opened.session_items()) == len(ids)
    window.toolbar.history_action.trigger()  # again: the same window, read again
    assert window.history_window is opened


def test_coming_to_the_front_reads_again_after_delete_all(
    win: HistoryWindow, history: SessionStore, ids: list[str]
) -> None:
    win.select_session(ids[0])
    history.delete_all()
    QApplication.sendEvent(win, QEvent(QEvent.Type.WindowActivate))
    assert win.session_items() == [] and win.selected is None
    assert win.transcript.toPlainText() == ""
    assert sum(d.sessions for d in win.chart.days) == 0
