"""The widget tests' loop behaves as the app's does: work that Qt steps between two runs
(qasync's last pass after a run, pytest-qt's after a test) still has its running loop.
Without that, a Live session's receive task failed mid-test with "bound to a different
event loop" and the link was lost (CI, stop 8)."""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QApplication

from tests.support.qt import run, until


def test_a_task_stepped_by_qt_between_runs_keeps_its_loop(
    qloop: asyncio.AbstractEventLoop,
) -> None:
    ready = asyncio.Event()
    steps: list[str] = []

    async def waiter() -> None:
        await ready.wait()  # binds the event to the loop running now
        ready.clear()
        steps.append("first")
        await ready.wait()  # woken by the processEvents below, outside any run
        await ready.wait()  # set: no loop needed
        await asyncio.sleep(0.001)  # needs the running loop
        steps.append("second")

    task = qloop.create_task(waiter())

    async def set_ready() -> None:
        ready.set()
        await until(lambda: bool(steps))

    run(qloop, set_ready())
    qloop.call_soon(ready.set)
    for _ in range(10):  # what pytest-qt does between and after tests
        QApplication.processEvents()
    run(qloop, asyncio.wait([task]))
    assert task.exception() is None
    assert steps == ["first", "second"]
