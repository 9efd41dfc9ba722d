"""Helpers for the widget tests (the window on a qasync loop): the harness loop, making
and disposing of a window, and bounded waits that keep Qt and asyncio running. The
fixtures that use them are in tests/ui/conftest.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import qasync
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication, QWidget

from emodesk.app import window_options
from emodesk.core.settings import AppSettings
from emodesk.ui.main_window import MainWindow
from emodesk.ui.settings_store import SettingsStore

T = TypeVar("T")


class HarnessEventLoop(qasync.QEventLoop):
    """qasync's loop that stays the thread's running loop between runs, as the app's one
    `run_until_complete` keeps it for the app's whole life. Tests run many, and between
    them Qt events are still processed (qasync's last pass after each run, pytest-qt's
    after each test): a task stepped there with no running loop fails on its next
    `Event.wait()` ("bound to a different event loop") or `asyncio.sleep()`."""

    def run_forever(self) -> Any:
        try:
            return super().run_forever()
        finally:
            asyncio.events._set_running_loop(self)


def make_window(store: SettingsStore, settings: AppSettings | None = None) -> MainWindow:
    loaded, _ = store.load()
    return MainWindow(window_options(), store, settings or loaded)


def dispose(widget: QWidget) -> None:
    """Delete a window now: Qt objects left for interpreter shutdown crash PySide6."""
    widget.close()
    if isinstance(widget, MainWindow):
        widget.ptt_key.detach()
        widget.clock.stop()
    widget.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def run(loop: asyncio.AbstractEventLoop, aw: Awaitable[T], timeout: float = 10.0) -> T:
    return loop.run_until_complete(asyncio.wait_for(aw, timeout))


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Wait (keeping Qt and asyncio running) until `predicate()` holds."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (polling widget state, not an event)
            await asyncio.sleep(0.01)


def settle(
    loop: asyncio.AbstractEventLoop, predicate: Callable[[], bool], timeout: float = 5.0
) -> None:
    run(loop, until(predicate, timeout), timeout + 1)
