"""The live audio view: a scrolling waveform of the microphone and of the reply in two
colours, and an input and an output level meter.

Everything here is drawn from `tick()`, called by the window's single FrameClock. The
plot items are made once; each tick reads the newest window of each ring buffer, reduces
it to a min/max envelope of a fixed number of bins (peak decimation, so a loud click is
never lost between pixels) and hands numpy arrays to `setData`. Ranges are fixed and
antialiasing is off. A source whose `total_written` has not moved is not redrawn, so an
idle window costs next to nothing.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import QHBoxLayout, QSizePolicy, QVBoxLayout, QWidget

from emodesk.dsp.levels import peak_dbfs, rms_dbfs
from emodesk.ui import theme

WINDOW_S = 6.0
BINS = 480
METER_WINDOW_S = 0.05
METER_FLOOR_DB = -60.0
FLAT_LEVEL = 0.004  # about -48 dBFS: under half a pixel at any plot height here
PAUSE_S = 0.1  # a stop in writing longer than this is drawn as silence


class SampleSource(Protocol):
    """What the scope reads: the audio engine's ring buffers satisfy it."""

    @property
    def total_written(self) -> int: ...

    def latest(self, n: int) -> np.ndarray[Any, Any]: ...


def peak_envelope(samples: np.ndarray[Any, Any], bins: int) -> np.ndarray[Any, Any]:
    """Min and max of each of `bins` equal slices, interleaved (2*bins values, -1..1)."""
    data = np.asarray(samples, dtype=np.float32).reshape(-1)
    per_bin = max(1, data.size // bins)
    usable = per_bin * bins
    if data.size < usable:
        data = np.concatenate([np.zeros(usable - data.size, dtype=np.float32), data])
    blocks = data[data.size - usable :].reshape(bins, per_bin)
    out = np.empty(2 * bins, dtype=np.float32)
    out[0::2] = blocks.min(axis=1)
    out[1::2] = blocks.max(axis=1)
    out *= 1.0 / 32768.0
    return out


def dbfs(samples: np.ndarray[Any, Any]) -> tuple[float, float]:
    """(rms, peak) of PCM16 samples in dBFS, floored at the meter's bottom."""
    return max(METER_FLOOR_DB, rms_dbfs(samples)), max(METER_FLOOR_DB, peak_dbfs(samples))


class LevelMeter(QWidget):
    """A horizontal dBFS bar with a peak mark; painted by hand (cheaper than a plot)."""

    def __init__(self, label: str, colour: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._label = label
        self._colour = QColor(colour)
        self.rms_db = METER_FLOOR_DB
        self.peak_db = METER_FLOOR_DB
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(f"{label} level (dBFS)")

    def sizeHint(self) -> QSize:
        return QSize(160, 16)

    def set_level(self, rms_db: float, peak_db: float) -> None:
        if (round(rms_db, 1), round(peak_db, 1)) == (round(self.rms_db, 1), round(self.peak_db, 1)):
            return
        self.rms_db, self.peak_db = rms_db, peak_db
        self.update()

    def _x(self, db: float, width: float) -> float:
        return width * (min(0.0, max(METER_FLOOR_DB, db)) - METER_FLOOR_DB) / -METER_FLOOR_DB

    def paintEvent(self, event: object) -> None:
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(QColor("#3a3f47"))
        painter.setBrush(QColor("#2a2e35"))
        painter.drawRoundedRect(rect, 3, 3)
        fill = QRectF(rect.left(), rect.top(), self._x(self.rms_db, rect.width()), rect.height())
        gradient = QLinearGradient(rect.topLeft(), rect.topRight())
        gradient.setColorAt(0.0, self._colour.darker(130))
        gradient.setColorAt(0.85, self._colour)
        gradient.setColorAt(1.0, QColor(theme.ESCALATION_COLOUR))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(gradient)
        painter.drawRoundedRect(fill, 3, 3)
        peak_x = rect.left() + self._x(self.peak_db, rect.width())
        painter.setPen(QColor("#f4f5f7"))
        painter.drawLine(int(peak_x), int(rect.top()) + 2, int(peak_x), int(rect.bottom()) - 2)
        painter.setPen(QColor("#e6e8eb"))
        painter.drawText(rect.adjusted(6, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter, self._label)
        painter.end()


class _Trace:
    """One source drawn as one curve, on the wall clock. The rings hold audio only (the
    mic while capturing, the reply while it plays), so the trace remembers where writing
    paused and for how long, and draws those pauses as silence: mic and reply scroll on
    one clock and line up. A trace that has scrolled out flat is not redrawn, so an idle
    window costs next to nothing."""

    def __init__(self, plot: pg.PlotItem, colour: str, rate: int, meter: LevelMeter) -> None:
        self.rate = rate
        self.meter = meter
        self.source: SampleSource | None = None
        self.curve = plot.plot(pen=pg.mkPen(colour, width=1))
        self.curve.setDownsampling(auto=False)
        self.curve.setClipToView(False)
        self.window_samples = int(WINDOW_S * rate)
        self.meter_samples = int(METER_WINDOW_S * rate)
        self._bin_samples = max(1, self.window_samples // BINS)
        self._min_pause = int(PAUSE_S * rate)
        self._written = -1  # total_written at the last change seen
        self._changed_at = 0.0  # when it changed (monotonic seconds)
        self._pauses: deque[tuple[int, int]] = deque(maxlen=64)  # (at sample, length)
        self._drawn: tuple[int, int] | None = None  # (written, silent bins) last drawn
        self._flat = False  # the curve on screen is a flat line

    def attach(self, source: SampleSource | None) -> None:
        self.source = source
        self._written = -1
        self._pauses.clear()
        self._drawn = None
        self._flat = False

    def tick(self, x: np.ndarray[Any, Any], now: float) -> bool:
        source = self.source
        if source is None:
            if self._drawn != (-2, 0):
                self.curve.setData(x, np.zeros_like(x))
                self.meter.set_level(METER_FLOOR_DB, METER_FLOOR_DB)
                self._drawn = (-2, 0)
            return False
        written = source.total_written
        if written != self._written:
            paused = min(self.window_samples, int((now - self._changed_at) * self.rate))
            if self._written >= 0 and paused >= self._min_pause:
                self._pauses.append((self._written, paused))
            self._written, self._changed_at = written, now
        silent = min(self.window_samples, int((now - self._changed_at) * self.rate))
        if written == 0:  # nothing ever written: one flat line, no scrolling to show
            silent = self.window_samples
        silent_bins = silent // self._bin_samples
        if self._drawn == (written, silent_bins):
            return False
        previous = self._drawn
        self._drawn = (written, silent_bins)
        if self._flat and previous is not None and written >= previous[0]:
            # A flat trace stays flat if what arrived since is flat too (the open mic in
            # a quiet room): look at the new samples and the meter's window only, not
            # the whole window.
            fresh = min(written - previous[0], self.window_samples)
            level = source.latest(max(fresh, self.meter_samples))
            new_peak = int(np.abs(level[level.size - fresh :]).max()) if fresh else 0
            if new_peak < FLAT_LEVEL * 32768:
                self.meter.set_level(*dbfs(level[-self.meter_samples :]))
                return False
        window = self._compose(source, written, silent_bins * self._bin_samples)
        level = window[-self.meter_samples :]
        self.meter.set_level(*dbfs(level))
        envelope = peak_envelope(window, BINS)
        # The mic stays open while connected; in a quiet room its trace is a flat line
        # frame after frame. Below half a pixel it looks the same, so it is not redrawn.
        flat = float(np.abs(envelope).max()) < FLAT_LEVEL
        if flat and self._flat:
            return False
        self._flat = flat
        self.curve.setData(x, envelope)
        return True

    def _compose(self, source: SampleSource, written: int, silent: int) -> np.ndarray[Any, Any]:
        """The newest `window_samples` of the stream with its pauses put back as zeros."""
        recent = source.latest(self.window_samples)
        pieces: list[np.ndarray[Any, Any]] = [np.zeros(silent, dtype=recent.dtype)]
        need = self.window_samples - silent
        end = written  # pieces are gathered right to left
        for at, length in reversed(self._pauses):
            if need <= 0:
                break
            real = min(end - at, need)
            if real > 0:
                pieces.append(
                    recent[recent.size - (written - end) - real : recent.size - (written - end)]
                )
                need -= real
            quiet = min(length, need)
            pieces.append(np.zeros(quiet, dtype=recent.dtype))
            need -= quiet
            end = at
        if need > 0:
            stop = recent.size - (written - end)
            pieces.append(recent[max(0, stop - need) : stop])
        out = np.concatenate(pieces[::-1])
        if out.size < self.window_samples:
            out = np.concatenate([np.zeros(self.window_samples - out.size, out.dtype), out])
        return out


class ScopeView(QWidget):
    """Waveforms of mic and reply over the last WINDOW_S seconds, with level meters."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("plotPanel")
        self.plot_widget = pg.PlotWidget(background=theme.PLOT_BACKGROUND)
        self.plot_widget.setAntialiasing(False)
        self.plot_widget.setMinimumHeight(90)
        plot = self.plot_widget.getPlotItem()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.disableAutoRange()
        plot.setXRange(-WINDOW_S, 0.0, padding=0)
        plot.setYRange(-1.0, 1.0, padding=0.02)
        plot.showGrid(x=True, y=False, alpha=theme.GRID_ALPHA)
        plot.hideAxis("left")
        plot.getAxis("bottom").setTextPen(theme.PLOT_FOREGROUND)
        plot.getAxis("bottom").setLabel("seconds")
        plot.getAxis("bottom").setTickSpacing(1.0, 1.0)  # a grid line a second, no finer
        self.mic_meter = LevelMeter("Microphone", theme.MIC_COLOUR)
        self.reply_meter = LevelMeter("Reply", theme.REPLY_COLOUR)
        self.mic = _Trace(plot, theme.MIC_COLOUR, 16000, self.mic_meter)
        self.reply = _Trace(plot, theme.REPLY_COLOUR, 24000, self.reply_meter)
        self._x = np.repeat(np.linspace(-WINDOW_S, 0.0, BINS, dtype=np.float32), 2)

        meters = QHBoxLayout()
        meters.setContentsMargins(6, 0, 6, 4)
        meters.addWidget(self.mic_meter)
        meters.addWidget(self.reply_meter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.plot_widget, 1)
        layout.addLayout(meters)
        self.frames_drawn = 0

    def attach(self, mic: SampleSource | None, reply: SampleSource | None) -> None:
        self.mic.attach(mic)
        self.reply.attach(reply)

    def tick(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        drew = self.mic.tick(self._x, now)
        drew = self.reply.tick(self._x, now) or drew
        if drew:
            self.frames_drawn += 1
        return drew
