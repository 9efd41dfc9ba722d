"""Where a conversation connects, decided in one place for the app and `emodesk converse`.

With an API key: the endpoint asked for (Google's by default). Without one: the offline
demo (the in-process emulator) when no endpoint is set; any key for a loopback endpoint
(the emulator or a test server accept it); a refusal for any other endpoint, which would
only reject the connection after a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from emodesk.conversation.controller import Connection
from emodesk.live.endpoint import EndpointError, is_loopback, resolve_endpoint
from emodesk.live.tokens import check_token_url

DEMO_KEY = "offline-demo"  # the emulator accepts any key; never a real one
OFFLINE_DEMO_NOTE = "offline demo: replies are synthetic (no API key set)"


class ConnectionChoiceError(ValueError):
    """No connection can be made as asked; `str()` is the reason for the user."""


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    """`start_emulator`: start the local emulator and connect with `for_emulator(...)`;
    otherwise connect with `connection`."""

    start_emulator: bool
    connection: Connection = field(default_factory=Connection)
    note: str = ""  # a line to show the user ("offline demo: ..."), or ""

    def for_emulator(self, url: str, ca_file: str | None) -> Connection:
        """The connection to an emulator started for this plan (at `url`)."""
        endpoint = resolve_endpoint(url, ca_file, env={})
        return Connection(
            endpoint=endpoint.base_url, ca_file=endpoint.ca_file, api_key=DEMO_KEY, synthetic=True
        )


def choose_connection(
    endpoint_arg: str | None,
    ca_arg: str | None,
    api_key: str | None,
    *,
    env: Mapping[str, str] | None = None,
    token_url: str | None = None,
) -> ConnectionPlan:
    """Decide how to connect from the options (`--endpoint`, `--ca-file`, falling back to
    EMODESK_ENDPOINT / EMODESK_CA_FILE in `env`, os.environ by default) and the stored
    key (None or "": none). With `token_url` (an organisation's token service) no key is
    used at all: every session gets an ephemeral token from it. Raises
    `ConnectionChoiceError` with the reason."""
    try:
        endpoint = resolve_endpoint(endpoint_arg, ca_arg, env=env)
    except EndpointError as exc:
        raise ConnectionChoiceError(str(exc)) from exc
    if token_url:
        try:
            url = check_token_url(token_url)
        except ValueError as exc:
            raise ConnectionChoiceError(str(exc)) from exc
        return ConnectionPlan(
            start_emulator=False,
            connection=Connection(
                endpoint=endpoint.base_url, ca_file=endpoint.ca_file, token_url=url
            ),
        )
    api_key = (api_key or "").strip()
    if endpoint.is_default and not api_key:
        return ConnectionPlan(start_emulator=True, note=OFFLINE_DEMO_NOTE)
    if not api_key:
        host = urlsplit(endpoint.base_url or "").hostname or ""
        if not is_loopback(host):
            raise ConnectionChoiceError(
                f"no API key for {host or endpoint.base_url}: set GEMINI_API_KEY or store "
                "one in the app"
            )
        api_key = DEMO_KEY  # a loopback endpoint (the emulator, a test server) takes any key
    return ConnectionPlan(
        start_emulator=False,
        connection=Connection(
            endpoint=endpoint.base_url, ca_file=endpoint.ca_file, api_key=api_key
        ),
    )
