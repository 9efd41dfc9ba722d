"""Shared test set-up.

- Qt runs offscreen unless a test starts its own X server.
- Tests never touch the user's keyring, and no test may reach beyond this machine:
  every socket connect to a non-loopback address fails loudly, in the test process and
  in every Python process it starts (tests/support/guard_site/sitecustomize.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.network_guard import loopback_only
from tests.support.system_tools import missing_message, missing_tools

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
os.environ.pop("GEMINI_API_KEY", None)
# Every Python process a test starts gets the same loopback-only guard (sitecustomize).
_GUARD_SITE = str(Path(__file__).parent / "support" / "guard_site")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_GUARD_SITE, os.environ.get("PYTHONPATH", "")) if p
)
os.environ.pop("GOOGLE_API_KEY", None)


_APP: object = None  # the run's one Qt application, alive for the whole run


def pytest_sessionstart(session: pytest.Session) -> None:
    global _APP
    missing = missing_tools()
    if missing:
        pytest.exit(missing_message(missing), returncode=4)
    # One QApplication for the whole run, made first: commands run in-process (report,
    # evaluate) make a bare QGuiApplication when none exists, and a widget test after
    # them then aborts ("construct a QApplication before a QWidget").
    from PySide6.QtWidgets import QApplication

    _APP = QApplication.instance() or QApplication(["emodesk-tests"])


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    with loopback_only():
        yield


@pytest.fixture(autouse=True)
def _umask_restored() -> Iterator[None]:
    """`emodesk.cli.main` sets a private umask for its process; a test that calls it in
    this process must not change what later tests create."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)
