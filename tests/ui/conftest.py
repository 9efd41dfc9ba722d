"""Widget tests run offscreen on a qasync loop, with settings in a temp INI file (never
the user's config) and the log in a temp dir."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication, QWidget

from emodesk.app import window_options
from emodesk.core.settings import AppSettings
from emodesk.ui.main_window import MainWindow
from emodesk.ui.settings_store import SettingsStore, open_qsettings
from tests.ui.fakes import FakeController

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


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    loop = HarnessEventLoop(qapp, already_running=False)
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    try:
        yield loop
        loop.run_until_complete(asyncio.sleep(0))
        # Work a test left running (a device listing, a preview) ends with the test, not
        # as "never awaited" noise when the loop is gone.
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    finally:
        asyncio.events._set_running_loop(None)  # other tests' asyncio.run must not see it
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def store(settings_path: Path) -> SettingsStore:
    return SettingsStore(open_qsettings(settings_path))


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


@pytest.fixture
def window(
    qtbot: Any, store: SettingsStore, qloop: asyncio.AbstractEventLoop
) -> Iterator[MainWindow]:
    win = make_window(store)
    win.show()
    qtbot.waitExposed(win)
    yield win
    dispose(win)


@pytest.fixture
def fake(window: MainWindow) -> FakeController:
    controller = FakeController()
    window.attach_controller(controller)
    return controller


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


@pytest.fixture(autouse=True)
def _collect_qt_garbage(qapp: QApplication) -> Iterator[None]:
    # Wrappers of deleted Qt objects collected at interpreter exit crash PySide6 6.12
    # (bool_dealloc); collecting them after each test, while Qt is alive, avoids that.
    yield
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
