import socket

import pytest

from tests.support.network_guard import ExternalNetworkBlocked


def test_connect_to_a_public_address_is_refused() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(ExternalNetworkBlocked),
    ):
        sock.connect(("142.250.0.1", 443))


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())


def test_a_python_process_the_tests_start_is_guarded_too() -> None:
    import subprocess
    import sys

    probe = (
        "import socket\n"
        "s = socket.socket()\n"
        "try:\n"
        "    s.connect(('192.0.2.1', 443))\n"  # TEST-NET-1: never routable
        "except ConnectionRefusedError as e:\n"
        "    print('blocked:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert out.startswith("blocked: tests may only connect to loopback"), out
