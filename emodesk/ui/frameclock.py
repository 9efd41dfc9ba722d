"""The one redraw timer. Every plot registers a `tick` here; data arriving never redraws
anything by itself (friture's rule), so the GUI thread does a bounded amount of drawing
work per frame however fast audio or events arrive.

A tick returns True when it drew something. After a second with nothing drawn the clock
drops to an idle rate (an open window with a quiet microphone costs next to nothing),
and the first frame that draws brings the full rate back."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer

FRAME_RATE_HZ = 30
IDLE_RATE_HZ = 10  # the first redraw after the idle rate comes at most 100 ms late
IDLE_AFTER_FRAMES = FRAME_RATE_HZ  # one second of frames that drew nothing


class FrameClock(QObject):
    def __init__(
        self,
        parent: QObject | None = None,
        rate_hz: int = FRAME_RATE_HZ,
        idle_rate_hz: int = IDLE_RATE_HZ,
    ) -> None:
        super().__init__(parent)
        self._active_ms = round(1000 / rate_hz)
        self._idle_ms = round(1000 / idle_rate_hz)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(self._active_ms)
        self._timer.timeout.connect(self.tick)
        self._subscribers: list[Callable[[], bool | None]] = []
        self._quiet_frames = 0
        self.frames = 0

    @property
    def idle(self) -> bool:
        return self._timer.interval() == self._idle_ms

    def add(self, tick: Callable[[], bool | None]) -> None:
        self._subscribers.append(tick)

    def remove(self, tick: Callable[[], bool | None]) -> None:
        self._subscribers = [t for t in self._subscribers if t != tick]

    def start(self) -> None:
        self._quiet_frames = 0
        self._timer.start(self._active_ms)

    def stop(self) -> None:
        self._timer.stop()

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def tick(self) -> None:
        self.frames += 1
        drew = False
        for tick in self._subscribers:
            drew = bool(tick()) or drew
        if drew:
            self._quiet_frames = 0
            if self.idle:
                self._timer.setInterval(self._active_ms)
        else:
            self._quiet_frames += 1
            if self._quiet_frames >= IDLE_AFTER_FRAMES and not self.idle:
                self._timer.setInterval(self._idle_ms)
