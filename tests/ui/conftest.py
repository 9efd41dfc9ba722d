"""Widget tests run offscreen on a qasync loop, with settings in a temp INI file (never
the user's config) and the log in a temp dir."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication

from emodesk.ui.main_window import MainWindow
from emodesk.ui.settings_store import SettingsStore, open_qsettings
from tests.support.qt import HarnessEventLoop, dispose, make_window
from tests.ui.fakes import FakeController


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


@pytest.fixture(autouse=True)
def _collect_qt_garbage(qapp: QApplication) -> Iterator[None]:
    # Wrappers of deleted Qt objects collected at interpreter exit crash PySide6 6.12
    # (bool_dealloc); collecting them after each test, while Qt is alive, avoids that.
    yield
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
