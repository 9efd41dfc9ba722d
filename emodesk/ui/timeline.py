"""The emotion timeline: one row per source (the model's judgment, the acoustic estimate),
one bar per reading from the turn's start to its end, coloured by label, with confidence
as opacity. Escalations get a red marker; the trend and the profile's advice sit in the
header; hovering a bar shows the full reading.

`TimelineData` holds the readings (plain Python, unit-tested); `TimelineView` draws them.
Drawing happens only in `tick()` and only when the data or the visible window changed.
Only readings inside the visible window are handed to pyqtgraph, so a long session costs
the same per frame as a short one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from emodesk.conversation.api import ReadingAdded
from emodesk.core.tracker import TREND_WINDOW_TURNS
from emodesk.ui import theme

SOURCES = ("model", "acoustic")  # top row first
SOURCE_TITLES = {"model": "Model", "acoustic": "Voice"}
VISIBLE_S = 90.0
PAGE_S = 30.0  # how far the view jumps when the newest reading reaches its right edge
BAR_HEIGHT = 0.7
MIN_BAR_S = 0.6  # a very short turn still gets a bar you can see and hover
# Names the toolbar button by its own words, so the way to turn it on is easy to find.
OFF_TEXT = "Emotion estimates are off — “Emotion: off” in the toolbar turns them on"


@dataclass(frozen=True, slots=True)
class TrendState:
    trend: str = ""
    escalate: bool = False
    advice: str = ""


def row_of(source: str) -> int:
    """Row index from the bottom (pyqtgraph's y grows upwards)."""
    if source in SOURCES:
        return len(SOURCES) - 1 - SOURCES.index(source)
    return 0


def describe(reading: ReadingAdded) -> str:
    """The hover text for one reading."""
    lines = [
        f"{SOURCE_TITLES.get(reading.source, reading.source)} · turn {reading.turn}",
        f"{reading.emotion} ({reading.confidence:.0%} confident), energy {reading.energy_level}",
        f"{reading.t_start_s:.1f}–{reading.t_end_s:.1f} s",
    ]
    if reading.arousal is not None and reading.valence is not None:
        lines.append(f"arousal {reading.arousal:+.2f}, valence {reading.valence:+.2f}")
    if reading.trend:
        lines.append(f"trend: {reading.trend}")
    if reading.escalate:
        lines.append("escalation")
    return "\n".join(lines)


class TimelineData:
    """Readings kept sorted by start time, with a version number bumped on every change."""

    def __init__(self) -> None:
        self.readings: list[ReadingAdded] = []
        self._starts: list[float] = []
        self.trend = TrendState()
        self.version = 0

    def add(self, reading: ReadingAdded) -> None:
        index = bisect.bisect_right(self._starts, reading.t_start_s)
        self._starts.insert(index, reading.t_start_s)
        self.readings.insert(index, reading)
        self.trend = TrendState(reading.trend, reading.escalate, self.trend.advice)
        self.version += 1

    def set_trend(self, trend: str, escalate: bool, advice: str) -> None:
        self.trend = TrendState(trend, escalate, advice)
        self.version += 1

    def escalation_changes(self) -> list[tuple[ReadingAdded, bool]]:
        """The readings at which escalation turned on (True) or off (False), in the order
        they were judged: where the marker goes, not on every reading while it is on."""
        changes: list[tuple[ReadingAdded, bool]] = []
        escalated = False
        for reading in sorted(self.readings, key=lambda r: (r.turn, r.t_end_s)):
            if reading.escalate != escalated:
                escalated = reading.escalate
                changes.append((reading, escalated))
        return changes

    def clear(self) -> None:
        self.readings.clear()
        self._starts.clear()
        self.trend = TrendState()
        self.version += 1

    @property
    def end_s(self) -> float:
        return max((r.t_end_s for r in self.readings), default=0.0)

    def visible(self, x0: float, x1: float) -> list[ReadingAdded]:
        """Readings that overlap [x0, x1]. Turns never overlap by much, so searching
        back one long turn's length from x0 is enough."""
        lo = bisect.bisect_left(self._starts, x0 - VISIBLE_S)
        hi = bisect.bisect_right(self._starts, x1)
        return [r for r in self.readings[lo:hi] if max(r.t_end_s, r.t_start_s + MIN_BAR_S) >= x0]

    def at(self, x: float, y: float) -> ReadingAdded | None:
        """The reading drawn under plot coordinates (x seconds, y row)."""
        for reading in self.visible(x, x):
            row = row_of(reading.source)
            end = max(reading.t_end_s, reading.t_start_s + MIN_BAR_S)
            if reading.t_start_s <= x <= end and abs(y - row) <= BAR_HEIGHT / 2:
                return reading
        return None


def visible_window(end_s: float) -> tuple[float, float]:
    """The fixed-width x range that shows `end_s`, moving in whole pages."""
    if end_s <= VISIBLE_S - PAGE_S / 3:
        return 0.0, VISIBLE_S
    pages = int(np.ceil((end_s + PAGE_S / 3 - VISIBLE_S) / PAGE_S))
    start = pages * PAGE_S
    return start, start + VISIBLE_S


class TimelineView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data = TimelineData()
        self._drawn_version = -1
        self._window = (0.0, VISIBLE_S)
        self.enabled_for_emotion = False
        # A past session (the History window): the x range spans all of it, not a page.
        self.whole_session = False

        self.title = QLabel("Emotion timeline")
        self.title.setObjectName("sectionTitle")
        self.trend_label = QLabel("")
        self.trend_label.setTextFormat(Qt.TextFormat.PlainText)
        # The advice can be long: let it shrink (with the full text on hover), never push
        # the plot wider than a small screen.
        self.trend_label.setMinimumWidth(40)
        self.trend_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.trend_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        header = QHBoxLayout()
        header.setContentsMargins(4, 0, 4, 0)
        header.addWidget(self.title)
        header.addWidget(self.trend_label, 1)

        self.plot_widget = pg.PlotWidget(background=theme.PLOT_BACKGROUND)
        self.plot_widget.setAntialiasing(False)
        self.plot_widget.setMinimumHeight(96)
        plot = self.plot_widget.getPlotItem()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.disableAutoRange()
        plot.setYRange(-0.6, len(SOURCES) - 0.4, padding=0)
        plot.setXRange(*self._window, padding=0)
        plot.showGrid(x=True, y=False, alpha=theme.GRID_ALPHA)
        left = plot.getAxis("left")
        left.setTicks([[(row_of(s), SOURCE_TITLES[s]) for s in SOURCES], []])
        left.setTextPen(theme.PLOT_FOREGROUND)
        left.setWidth(46)
        bottom = plot.getAxis("bottom")
        bottom.setTextPen(theme.PLOT_FOREGROUND)
        bottom.setTickSpacing(10.0, 10.0)  # a grid line every 10 s: finer is only noise
        self.bars = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[], pen=None, brush=None)
        plot.addItem(self.bars)
        self.markers = pg.ScatterPlotItem(
            symbol="t1", size=11, pen=None, brush=pg.mkBrush(theme.ESCALATION_COLOUR)
        )
        plot.addItem(self.markers)
        self.placeholder = pg.TextItem("", color=theme.PLOT_FOREGROUND, anchor=(0.5, 0.5))
        plot.addItem(self.placeholder)
        self.placeholder.setPos(VISIBLE_S / 2, (len(SOURCES) - 1) / 2)
        self.plot_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)

        legend = QHBoxLayout()
        legend.setContentsMargins(4, 0, 4, 0)
        legend.setSpacing(10)
        for label, colour in theme.EMOTION_COLOURS.items():
            chip = QLabel(f'<span style="color:{colour}">■</span> {label}')
            legend.addWidget(chip)
        legend.addStretch(1)
        legend.addWidget(QLabel("opacity = confidence · ▲ escalation began · ▼ eased"))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.plot_widget, 1)
        layout.addLayout(legend)
        self.set_emotion_enabled(False)

    # -- intents from the window ---------------------------------------------------------
    def set_emotion_enabled(self, enabled: bool) -> None:
        """Without consent the timeline shows no reading at all, only why."""
        self.enabled_for_emotion = enabled
        if not enabled:
            self.data.clear()
            self.placeholder.setText(OFF_TEXT)
        else:
            self.placeholder.setText("" if self.data.readings else "Readings appear after a turn")
        self._drawn_version = -1

    def add_reading(self, reading: ReadingAdded) -> None:
        if self.enabled_for_emotion:
            self.data.add(reading)
            self.placeholder.setText("")

    def set_trend(self, trend: str, escalate: bool, advice: str) -> None:
        if self.enabled_for_emotion:
            self.data.set_trend(trend, escalate, advice)

    def reset(self) -> None:
        self.data.clear()
        self.set_emotion_enabled(self.enabled_for_emotion)

    # -- drawing -------------------------------------------------------------------------
    def tick(self) -> bool:
        if self.data.version == self._drawn_version:
            return False
        self._drawn_version = self.data.version
        if self.whole_session:
            window = (0.0, max(VISIBLE_S / 3, self.data.end_s * 1.02 + 1.0))
        else:
            window = visible_window(self.data.end_s)
        if window != self._window:
            self._window = window
            self.plot_widget.getPlotItem().setXRange(*window, padding=0)
            self.placeholder.setPos((window[0] + window[1]) / 2, (len(SOURCES) - 1) / 2)
        shown = self.data.visible(*window)
        n = len(shown)
        x0 = np.fromiter((r.t_start_s for r in shown), dtype=float, count=n)
        x1 = np.fromiter((max(r.t_end_s, r.t_start_s + MIN_BAR_S) for r in shown), float, n)
        rows = np.fromiter((row_of(r.source) for r in shown), dtype=float, count=n)
        brushes = [self._brush(r) for r in shown]
        changes = self.data.escalation_changes()
        began = {id(r) for r, on in changes if on}
        pens = [
            pg.mkPen(theme.ESCALATION_COLOUR, width=2) if id(r) in began else pg.mkPen(None)
            for r in shown
        ]
        if n == 0:  # pyqtgraph cannot take empty per-bar pen lists
            self.bars.setOpts(x0=x0, x1=x1, y0=rows, height=BAR_HEIGHT, pens=None, brushes=None)
        else:
            self.bars.setOpts(
                x0=x0, x1=x1, y0=rows - BAR_HEIGHT / 2, height=BAR_HEIGHT,
                brushes=brushes, pens=pens,
            )  # fmt: skip
        marked = [(r, on) for r, on in changes if window[0] <= r.t_end_s <= window[1]]
        self.markers.setData(
            x=[r.t_end_s for r, _ in marked],
            y=[row_of(r.source) + BAR_HEIGHT / 2 + 0.12 for r, _ in marked],
            symbol=["t1" if on else "t" for _, on in marked],  # ▲ began, ▼ eased
        )
        text = self._trend_text()
        self.trend_label.setText(text)
        self.trend_label.setToolTip(
            f"{text}\nThe trend compares the newer half of these turns with the "
            "older half (both sources, the model's weighing more)."
            if text
            else ""
        )
        return True

    @staticmethod
    def _brush(reading: ReadingAdded) -> QColor:
        colour = QColor(theme.emotion_colour(reading.emotion))
        colour.setAlphaF(0.25 + 0.75 * max(0.0, min(1.0, reading.confidence)))
        return colour

    def _trend_text(self) -> str:
        trend = self.data.trend
        if not self.enabled_for_emotion or not trend.trend:
            return ""
        turns = sorted({r.turn for r in self.data.readings})[-TREND_WINDOW_TURNS:]
        span = f"turns {turns[0]}–{turns[-1]}" if len(turns) > 1 else ""
        text = f"Trend{', ' + span if span else ''}: {trend.trend.replace('_', ' ')}"
        if trend.escalate:
            text += " — escalation"
        if trend.advice:
            text += f" · {trend.advice}"
        return text

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        view = self.plot_widget.getPlotItem().getViewBox()
        point = view.mapSceneToView(scene_pos)
        reading = self.data.at(point.x(), point.y())
        if reading is None:
            QToolTip.hideText()
            self.plot_widget.setToolTip("")
            return
        text = describe(reading)
        self.plot_widget.setToolTip(text)
        global_pos = self.plot_widget.mapToGlobal(self.plot_widget.mapFromScene(scene_pos))
        QToolTip.showText(global_pos, text, self.plot_widget)
