"""Shared test set-up.

- Qt runs offscreen unless a test starts its own X server.
- Tests never touch the user's keyring, and no test may reach beyond this machine:
  every socket connect to a non-loopback address fails loudly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.network_guard import loopback_only

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
os.environ.pop("GEMINI_API_KEY", None)
os.environ.pop("GOOGLE_API_KEY", None)


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
