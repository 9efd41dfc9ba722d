"""Fixtures for the conversation tests that need the real audio stack."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.pulse import PulseStack, missing_binaries


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseStack]:
    """A private PulseAudio server with null sinks (its own socket and dirs)."""
    missing = missing_binaries()
    if missing:
        reason = f"audio stack binaries missing: {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI installs them, so this is a set-up error)")
        pytest.skip(reason)
    stack = PulseStack().start()
    try:
        yield stack
    finally:
        stack.stop()
