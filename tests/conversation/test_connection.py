"""Choosing where a conversation connects: key, endpoint, offline demo, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from emodesk.conversation.connection import (
    DEMO_KEY,
    ConnectionChoiceError,
    choose_connection,
)

NO_ENV: dict[str, str] = {}


@pytest.mark.parametrize("no_key", [None, "", "  "])
def test_no_key_and_no_endpoint_is_the_offline_demo(no_key: str | None) -> None:
    plan = choose_connection(None, None, no_key, env=NO_ENV)
    assert plan.start_emulator and "offline demo" in plan.note
    conn = plan.for_emulator("wss://127.0.0.1:4321", None)
    assert conn.endpoint == "https://127.0.0.1:4321"
    assert conn.api_key == DEMO_KEY and conn.synthetic


def test_a_key_goes_to_googles_endpoint_by_default() -> None:
    plan = choose_connection(None, None, " real-key ", env=NO_ENV)
    assert not plan.start_emulator and plan.note == ""
    assert plan.connection.endpoint is None and plan.connection.api_key == "real-key"
    assert not plan.connection.synthetic


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("wss://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("https://localhost:8443/", "https://localhost:8443"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("wss://[::1]", "https://[::1]"),
        ("https://127.5.6.7", "https://127.5.6.7"),
    ],
)
def test_no_key_on_a_loopback_endpoint_uses_the_demo_key(url: str, base: str) -> None:
    plan = choose_connection(url, None, "", env=NO_ENV)
    assert not plan.start_emulator
    assert plan.connection.endpoint == base and plan.connection.api_key == DEMO_KEY


@pytest.mark.parametrize(
    "url", ["https://example.com", "wss://10.0.0.2:443", "https://[2001:db8::1]:8443"]
)
def test_no_key_on_a_remote_endpoint_is_refused(url: str) -> None:
    with pytest.raises(ConnectionChoiceError, match="no API key"):
        choose_connection(url, None, "", env=NO_ENV)


def test_the_environment_endpoint_counts_and_bad_options_are_one_error_type(
    tmp_path: Path,
) -> None:
    plan = choose_connection(None, None, "", env={"EMODESK_ENDPOINT": "wss://[::1]:9"})
    assert plan.connection.endpoint == "https://[::1]:9"
    with pytest.raises(ConnectionChoiceError, match="plain ws://"):
        choose_connection("ws://127.0.0.1:9", None, "", env=NO_ENV)
    with pytest.raises(ConnectionChoiceError, match="does not exist"):
        choose_connection("wss://127.0.0.1:9", str(tmp_path / "none.pem"), "", env=NO_ENV)
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    plan = choose_connection("wss://127.0.0.1:9", str(ca), "k", env=NO_ENV)
    assert plan.connection.ca_file == str(ca)
