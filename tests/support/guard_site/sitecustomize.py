"""Loaded by every Python process the tests start (tests/conftest.py puts this folder on
PYTHONPATH): sockets may connect to loopback and local (AF_UNIX) addresses only, as in
the test process itself. Self-contained: it runs before anything else is importable."""

from __future__ import annotations

import ipaddress
import socket

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: object) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    if isinstance(address, tuple) and address:
        host = address[0]
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return False


_error: type[OSError] = ConnectionRefusedError


def _blocked(address: object) -> OSError:
    return _error(f"tests may only connect to loopback, not {address!r}")


def _connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise _blocked(address)
    _real_connect(self, address)  # type: ignore[arg-type]


def _connect_ex(self: socket.socket, address: object) -> int:
    if not _is_local(address):
        raise _blocked(address)
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


def install(blocked: type[OSError] = ConnectionRefusedError) -> None:
    """Guard every socket of this process; a refused connect raises `blocked`."""
    global _error
    _error = blocked
    socket.socket.connect = _connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


if __name__ == "sitecustomize":  # loaded by site at a process's start: guard it
    install()
