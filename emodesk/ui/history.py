"""The History window (toolbar *History*): past sessions by day, one session's emotion
timeline (the main window's `TimelineView`, showing the whole session) and transcript,
its exports (timeline CSV/JSON, transcript text) and deletion; below, the last 7/30/90
days: the daily emotion mix as stacked bars and the mean arousal and valence per source.

It reads the history through `HistorySource` (the composition root hands it the
session store; tests a real one on a temp file). Reads are small indexed queries made
when the window opens or a session is chosen; exports and deletions run on an executor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from emodesk.conversation.api import ReadingAdded
from emodesk.core.history import (
    EMOTIONS,
    PERIODS_DAYS,
    DayStats,
    ReadingPoint,
    SessionDigest,
    daily_stats,
    day_bounds,
    local_day,
    period,
)
from emodesk.core.profiles import PROFILES
from emodesk.core.timeline import TimelineEntry
from emodesk.ui import theme
from emodesk.ui.timeline import TimelineView
from emodesk.ui.window.dialogs import replace_dialog, use_qt_dialogs

SOURCE_LINES = {  # (source, measure) -> (title, colour, dash)
    ("acoustic", "arousal"): ("Voice arousal", "#f59e42", Qt.PenStyle.SolidLine),
    ("acoustic", "valence"): ("Voice valence", "#38bdb0", Qt.PenStyle.SolidLine),
    ("model", "arousal"): ("Model arousal", "#f59e42", Qt.PenStyle.DashLine),
    ("model", "valence"): ("Model valence", "#38bdb0", Qt.PenStyle.DashLine),
}
EXPORTS = {"csv": "Timeline CSV", "json": "Timeline JSON", "transcript": "Transcript"}


class HistorySource(Protocol):
    """What the window reads and changes (`emodesk.store.SessionStore` has all of it)."""

    def session_digests(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[SessionDigest]: ...

    def reading_points(self, since: datetime, until: datetime) -> list[ReadingPoint]: ...

    def readings(self, session_id: str) -> list[TimelineEntry]: ...

    def transcript(self, session_id: str) -> list[tuple[int, str, str]]: ...

    def delete_session(self, session_id: str) -> None: ...

    def export_session(self, session_id: str, path: str, fmt: str = "csv") -> None: ...

    def export_transcript(self, session_id: str, path: str) -> None: ...


def reading_of(entry: TimelineEntry) -> ReadingAdded:
    r = entry.reading
    return ReadingAdded(
        turn=r.turn,
        source=r.source.value,
        emotion=r.emotion.value,
        confidence=r.confidence,
        energy_level=r.energy_level.value,
        t_start_s=r.t_start_s,
        t_end_s=r.t_end_s,
        arousal=r.arousal,
        valence=r.valence,
        trend=entry.trend.value,
        escalate=entry.escalate,
    )


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def profile_title(key: str) -> str:
    return PROFILES[key].title if key in PROFILES else key


def transcript_text(lines: Sequence[tuple[int, str, str]]) -> str:
    return "\n".join(
        f"[{turn}] {'You' if role == 'user' else 'Assistant'}: {text}" for turn, role, text in lines
    )


class DaysChart(QWidget):
    """The last N days: the emotion mix per day (stacked shares) and mean arousal and
    valence per source per day (a day without values breaks the line)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.days: list[DayStats] = []
        self.mix_plot = pg.PlotWidget(background=theme.PLOT_BACKGROUND)
        self.affect_plot = pg.PlotWidget(background=theme.PLOT_BACKGROUND)
        for plot_widget, title in (
            (self.mix_plot, "Emotion mix per day"),
            (self.affect_plot, "Mean arousal / valence per day"),
        ):
            plot = plot_widget.getPlotItem()
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setTitle(title, color=theme.PLOT_FOREGROUND, size="10pt")
            plot.showGrid(x=False, y=True, alpha=theme.GRID_ALPHA)
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen(theme.PLOT_FOREGROUND)
            plot_widget.setMinimumHeight(150)
        self.mix_plot.setYRange(0, 1, padding=0.02)
        self.affect_plot.setYRange(-1, 1, padding=0.05)
        self.mix_bars: dict[str, pg.BarGraphItem] = {}
        for emotion in EMOTIONS:
            bars = pg.BarGraphItem(
                x=[], height=[], width=0.7, brush=theme.emotion_colour(emotion), pen=None
            )
            self.mix_plot.addItem(bars)
            self.mix_bars[emotion] = bars
        legend = self.affect_plot.getPlotItem().addLegend(offset=(6, 6))
        legend.setLabelTextColor(theme.PLOT_FOREGROUND)
        self.lines: dict[tuple[str, str], pg.PlotDataItem] = {}
        self.legend_titles: dict[tuple[str, str], str] = {}
        self.legend = legend
        for key, (title, colour, dash) in SOURCE_LINES.items():
            line = self.affect_plot.plot(
                [], [], pen=pg.mkPen(colour, width=2, style=dash), symbol="o", symbolSize=5,
                symbolBrush=colour, symbolPen=None, connect="finite",
            )  # fmt: skip
            self.legend_titles[key] = title
            self.lines[key] = line
        self.affect_plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#555b66")))
        self.note = QLabel("")
        self.note.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.mix_plot, 1)
        layout.addWidget(self.affect_plot, 1)

    def set_days(self, days: Sequence[DayStats]) -> None:
        self.days = list(days)
        n = len(self.days)
        x = np.arange(n, dtype=float)
        bottom = np.zeros(n)
        for emotion in EMOTIONS:
            share = np.array([d.share(emotion) for d in self.days], dtype=float)
            self.mix_bars[emotion].setOpts(x=x, y0=bottom.copy(), height=share, width=0.7)
            bottom += share
        self.legend.clear()
        silent: set[str] = set()
        for (source, measure), line in self.lines.items():
            values = [getattr(d, measure).get(source) for d in self.days]
            if all(v is None for v in values):  # the model gives no arousal or valence
                line.setData([], [])
                silent.add(source)
                continue
            self.legend.addItem(line, self.legend_titles[(source, measure)])
            y = np.array([np.nan if v is None else v for v in values], dtype=float)
            line.setData(x, y)
        title = "Mean arousal / valence per day"
        if "model" in silent:
            title += " (the model gives none)"
        self.affect_plot.getPlotItem().setTitle(title, color=theme.PLOT_FOREGROUND, size="10pt")
        step = max(1, n // 10)
        ticks = [(i, f"{d.day:%d/%m}") for i, d in enumerate(self.days) if i % step == 0]
        for plot_widget in (self.mix_plot, self.affect_plot):
            plot_widget.getAxis("bottom").setTicks([ticks, []])
            plot_widget.setXRange(-0.6, max(0, n - 1) + 0.6, padding=0)

    def mix_heights(self, emotion: str) -> list[float]:
        """The drawn share of `emotion` per day (for tests)."""
        heights = self.mix_bars[emotion].opts["height"]
        return [float(h) for h in heights]

    def line_values(self, source: str, measure: str) -> list[float | None]:
        _, y = self.lines[(source, measure)].getData()
        if y is None or len(y) == 0:
            return [None] * len(self.days)
        return [None if np.isnan(v) else float(v) for v in y]


class HistoryWindow(QWidget):
    """`session_deleted(session_id)` after a deletion; `exported(path)` after an export."""

    session_deleted = Signal(str)
    exported = Signal(str)

    def __init__(
        self,
        source: HistorySource,
        parent: QWidget | None = None,
        *,
        today: Callable[[], date] = date.today,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.source = source
        self._today = today
        self.digests: list[SessionDigest] = []
        self.selected: SessionDigest | None = None
        self.days_shown = PERIODS_DAYS[0]
        self.dialog: QFileDialog | None = None
        self.message_box: QMessageBox | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self.setWindowTitle("EmoDesk — History")
        self.setStyleSheet(theme.STYLE_SHEET)
        self.resize(1200, 800)

        self.sessions = QTreeWidget()
        self.sessions.setHeaderLabels(["When", "Profile", "Length", "Turns", "Emotion mix"])
        self.sessions.setRootIsDecorated(True)
        self.sessions.setUniformRowHeights(True)
        self.sessions.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.sessions.currentItemChanged.connect(lambda item, _old: self._chosen(item))

        self.heading = QLabel("Choose a session")
        self.heading.setObjectName("sectionTitle")
        self.timeline = TimelineView()
        self.timeline.whole_session = True
        self.timeline.plot_widget.getPlotItem().getAxis("bottom").setTickSpacing()  # auto
        self.timeline.set_emotion_enabled(True)
        self.transcript = QPlainTextEdit()
        self.transcript.setReadOnly(True)
        self.transcript.setPlaceholderText("The session's transcript")
        buttons = QHBoxLayout()
        self.export_buttons: dict[str, QPushButton] = {}
        for fmt, title in EXPORTS.items():
            button = QPushButton(f"Export {title}…")
            button.clicked.connect(lambda _=False, f=fmt: self.open_export_dialog(f))
            buttons.addWidget(button)
            self.export_buttons[fmt] = button
        buttons.addStretch(1)
        self.delete_button = QPushButton("Delete session…")
        self.delete_button.clicked.connect(self.confirm_delete)
        buttons.addWidget(self.delete_button)

        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.heading)
        detail_layout.addWidget(self.timeline, 3)
        detail_layout.addWidget(self.transcript, 2)
        detail_layout.addLayout(buttons)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.sessions)
        top.addWidget(detail)
        top.setStretchFactor(0, 5)
        top.setStretchFactor(1, 6)
        top.setSizes([520, 680])

        self.period_buttons = QButtonGroup(self)
        period_row = QHBoxLayout()
        over = QLabel("Over days")
        over.setObjectName("sectionTitle")
        period_row.addWidget(over)
        for days in PERIODS_DAYS:
            button = QPushButton(f"{days} days")
            button.setCheckable(True)
            button.setChecked(days == self.days_shown)
            button.clicked.connect(lambda _=False, d=days: self.show_days(d))
            self.period_buttons.addButton(button, days)
            period_row.addWidget(button)
        self.period_summary = QLabel("")
        period_row.addWidget(self.period_summary, 1)
        self.chart = DaysChart()
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addLayout(period_row)
        bottom_layout.addWidget(self.chart, 1)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self.reload()

    # -- reading ---------------------------------------------------------------------------
    def reload(self) -> None:
        """Sessions and the chart read again (after a deletion, or when shown again)."""
        keep = self.selected.session_id if self.selected is not None else None
        self.digests = self.source.session_digests()
        self.sessions.clear()
        by_day: dict[date, list[SessionDigest]] = {}
        for digest in self.digests:  # newest first
            by_day.setdefault(local_day(digest.started_utc), []).append(digest)
        chosen: QTreeWidgetItem | None = None
        for day, digests in by_day.items():
            minutes = sum(d.duration_s for d in digests) / 60
            day_item = QTreeWidgetItem(
                [f"{day:%a %d %b %Y}", f"{len(digests)} session(s)", f"{minutes:.0f} min"]
            )
            day_item.setFirstColumnSpanned(False)
            self.sessions.addTopLevelItem(day_item)
            for d in digests:
                item = QTreeWidgetItem(
                    [
                        f"{d.started_utc.astimezone():%H:%M}",
                        profile_title(d.profile),
                        duration_text(d.duration_s),
                        str(d.turns),
                        d.mix_text() or "no estimates",
                    ]
                )
                item.setData(0, Qt.ItemDataRole.UserRole, d.session_id)
                day_item.addChild(item)
                if d.session_id == keep:
                    chosen = item
            day_item.setExpanded(True)
        if chosen is not None:
            self.sessions.setCurrentItem(chosen)
        else:
            self._show(None)
        self.show_days(self.days_shown)

    def session_items(self) -> list[QTreeWidgetItem]:
        """The session rows, newest first (the day rows hold them)."""
        items: list[QTreeWidgetItem] = []
        for i in range(self.sessions.topLevelItemCount()):
            day = self.sessions.topLevelItem(i)
            if day is not None:
                found = (day.child(j) for j in range(day.childCount()))
                items += [item for item in found if item is not None]
        return items

    def select_session(self, session_id: str) -> None:
        for item in self.session_items():
            if item.data(0, Qt.ItemDataRole.UserRole) == session_id:
                self.sessions.setCurrentItem(item)
                return
        raise KeyError(session_id)

    def _chosen(self, item: QTreeWidgetItem | None) -> None:
        session_id = None if item is None else item.data(0, Qt.ItemDataRole.UserRole)
        digest = next((d for d in self.digests if d.session_id == session_id), None)
        self._show(digest)

    def _show(self, digest: SessionDigest | None) -> None:
        self.selected = digest
        for button in (*self.export_buttons.values(), self.delete_button):
            button.setEnabled(digest is not None)
        self.timeline.reset()
        if digest is None:
            self.heading.setText("Choose a session")
            self.transcript.setPlainText("")
            self.timeline.tick()
            return
        started = digest.started_utc.astimezone()
        self.heading.setText(
            f"{started:%a %d %b %Y %H:%M} · {profile_title(digest.profile)} · "
            f"{duration_text(digest.duration_s)} · {digest.turns} turn(s)"
        )
        entries = self.source.readings(digest.session_id)
        for entry in entries:
            self.timeline.add_reading(reading_of(entry))
        if entries:
            last = entries[-1]
            self.timeline.set_trend(last.trend.value, last.escalate, "")
        else:
            self.timeline.placeholder.setText("No emotion estimates in this session")
        self.timeline.tick()
        self.transcript.setPlainText(transcript_text(self.source.transcript(digest.session_id)))

    def show_days(self, days: int) -> None:
        """The chart of the last `days` days (7, 30 or 90)."""
        self.days_shown = days
        button = self.period_buttons.button(days)
        if button is not None:
            button.setChecked(True)
        first, last = period(self._today(), days)
        since, until = day_bounds(first, last)
        sessions = self.source.session_digests(since, until)
        stats = daily_stats(sessions, self.source.reading_points(since, until), first, last)
        self.chart.set_days(stats)
        minutes = sum(s.minutes for s in stats)
        self.period_summary.setText(
            f"  {len(sessions)} session(s), {minutes:.0f} min, "
            f"{sum(s.readings for s in stats)} estimate(s) from {first:%d %b} to {last:%d %b}"
            " — estimates of how the voice sounded, not a diagnosis"
        )

    # -- changing --------------------------------------------------------------------------
    def _off_loop(self, work: Callable[[], None], done: Callable[[], None]) -> asyncio.Future[Any]:
        async def run() -> None:
            await asyncio.get_running_loop().run_in_executor(None, work)
            done()

        future = asyncio.ensure_future(run())
        self._tasks.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: asyncio.Future[Any]) -> None:
        self._tasks.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self._tell(f"That did not work: {error}")

    def _tell(self, text: str) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Warning, "History", text, parent=self)
        self.message_box = replace_dialog(self.message_box, box)
        box.open()
        return box

    def open_export_dialog(self, fmt: str) -> QFileDialog:
        assert self.selected is not None
        suffix = "txt" if fmt == "transcript" else fmt
        name = f"emodesk-{self.selected.session_id}-{fmt}.{suffix}"
        dialog = QFileDialog(self, f"Export {EXPORTS[fmt]}", str(Path.home() / name))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix(suffix)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, use_qt_dialogs())
        dialog.fileSelected.connect(lambda path: self.export_to(path, fmt))
        self.dialog = replace_dialog(self.dialog, dialog)
        dialog.open()
        return dialog

    def export_to(self, path: str, fmt: str) -> asyncio.Future[Any]:
        """Write the chosen session's timeline ("csv", "json") or transcript to `path`."""
        assert self.selected is not None
        session_id = self.selected.session_id
        if fmt == "transcript":

            def work() -> None:
                self.source.export_transcript(session_id, path)
        else:

            def work() -> None:
                self.source.export_session(session_id, path, fmt)

        return self._off_loop(work, lambda: self.exported.emit(path))

    def confirm_delete(self) -> QMessageBox | None:
        if self.selected is None:
            return None
        digest = self.selected
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Delete session",
            f"Delete the session of {digest.started_utc.astimezone():%a %d %b %H:%M} with its "
            "emotion estimates and transcript? This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        yes = box.button(QMessageBox.StandardButton.Yes)
        yes.setText("Delete")
        yes.clicked.connect(lambda: self.delete_session(digest.session_id))
        self.message_box = replace_dialog(self.message_box, box)
        box.open()
        return box

    def delete_session(self, session_id: str) -> asyncio.Future[Any]:
        def done() -> None:
            if self.selected is not None and self.selected.session_id == session_id:
                self.selected = None
            self.reload()
            self.session_deleted.emit(session_id)

        return self._off_loop(lambda: self.source.delete_session(session_id), done)

    def event(self, event: QEvent) -> bool:
        # Read again whenever the window comes to the front: a session may have ended,
        # or retention or "Delete all data" removed some since it was last shown.
        if event.type() == QEvent.Type.WindowActivate and self.isVisible():
            self.reload()
        return super().event(event)

    def closeEvent(self, event: Any) -> None:
        for future in list(self._tasks):
            with contextlib.suppress(Exception):
                future.cancel()
        super().closeEvent(event)
