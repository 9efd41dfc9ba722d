"""The test run's network guard: sockets may connect to loopback (and local AF_UNIX)
addresses only, in the test process (`loopback_only`) and in every Python process the
tests start (guard_site/sitecustomize.py, on their PYTHONPATH). One implementation:
the sitecustomize's, which must stand alone because it runs before anything else."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tests.support.guard_site import sitecustomize as guard


class ExternalNetworkBlocked(OSError):
    pass


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    guard.install(ExternalNetworkBlocked)
    try:
        yield
    finally:
        guard.uninstall()
