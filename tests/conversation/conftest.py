"""Fixtures for the conversation tests that need the real audio stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.pulse import PulseStack, missing_binaries
from tests.support.system_tools import missing_message


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseStack]:
    """A private PulseAudio server with null sinks (its own socket and dirs)."""
    missing = missing_binaries()
    if missing:  # never a skip: a green run means the real stack ran
        pytest.fail(missing_message(missing))
    stack = PulseStack().start()
    try:
        yield stack
    finally:
        stack.stop()
