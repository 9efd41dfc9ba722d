"""The one redraw timer. Every plot registers a `tick` here; data arriving never redraws
anything by itself (friture's rule), so the GUI thread does a bounded amount of drawing
work per frame however fast audio or events arrive."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer

FRAME_RATE_HZ = 30


class FrameClock(QObject):
    def __init__(self, parent: QObject | None = None, rate_hz: int = FRAME_RATE_HZ) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(round(1000 / rate_hz))
        self._timer.timeout.connect(self.tick)
        self._subscribers: list[Callable[[], None]] = []
        self.frames = 0

    def add(self, tick: Callable[[], None]) -> None:
        self._subscribers.append(tick)

    def remove(self, tick: Callable[[], None]) -> None:
        self._subscribers = [t for t in self._subscribers if t != tick]

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def tick(self) -> None:
        self.frames += 1
        for tick in self._subscribers:
            tick()
