"""Every store test gets its own history file in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emodesk.store import SessionStore


@pytest.fixture
def history_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def store(history_path: Path) -> Iterator[SessionStore]:
    opened = SessionStore(history_path)
    yield opened
    opened.close()
