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
