"""Where the Live session connects and which certificate it trusts.

`--endpoint URL` / `EMODESK_ENDPOINT` and `--ca-file PEM` / `EMODESK_CA_FILE` move the
session to another server that speaks Google's protocol (the local emulator, a proxy).
The SDK always speaks `wss` when it has an API key, so only TLS endpoints are accepted;
turning certificate verification off is allowed for loopback addresses only.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from emodesk.live.settings import LiveSettings

if TYPE_CHECKING:
    from google.genai import Client, types

ENV_ENDPOINT = "EMODESK_ENDPOINT"
ENV_CA_FILE = "EMODESK_CA_FILE"
ENV_INSECURE = "EMODESK_INSECURE_LOOPBACK"

# Ephemeral tokens only work on v1alpha.
_EPHEMERAL_TOKEN_PREFIX = "auth_tokens/"


class EndpointError(ValueError):
    """An endpoint or CA option that cannot be used (wrong scheme, missing file...)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """`base_url` None means Google's own endpoint."""

    base_url: str | None = None
    ca_file: str | None = None
    verify: bool = True

    @property
    def is_default(self) -> bool:
        return self.base_url is None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_endpoint(
    endpoint: str | None = None,
    ca_file: str | None = None,
    *,
    verify: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> Endpoint:
    """Arguments win over the environment. Raises `EndpointError` with the reason."""
    env = os.environ if env is None else env
    url = (endpoint or env.get(ENV_ENDPOINT) or "").strip() or None
    cafile = (ca_file or env.get(ENV_CA_FILE) or "").strip() or None
    if verify is None:
        verify = env.get(ENV_INSECURE, "") not in ("1", "true", "yes")
    if url is None:
        if cafile is not None:
            raise EndpointError("--ca-file needs --endpoint (Google's endpoint uses public CAs)")
        if not verify:
            raise EndpointError("certificate checks can only be skipped for a loopback endpoint")
        return Endpoint()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("ws", "http"):
        raise EndpointError(
            f"{url!r}: plain {scheme}:// is not supported; the Live API needs wss:// (TLS)"
        )
    if scheme not in ("wss", "https"):
        raise EndpointError(f"{url!r}: the endpoint must be a wss:// or https:// URL")
    if not parts.hostname:
        raise EndpointError(f"{url!r}: no host name")
    if not verify and not is_loopback(parts.hostname):
        raise EndpointError(
            f"{parts.hostname}: certificate checks can only be skipped for a loopback address"
        )
    if cafile is not None:
        path = Path(cafile).expanduser()
        if not path.is_file():
            raise EndpointError(f"CA file {cafile!r} does not exist")
        cafile = str(path)
    # The SDK turns the scheme into wss itself; it wants the base as https.
    base = parts._replace(scheme="https", query="", fragment="").geturl().rstrip("/")
    return Endpoint(base_url=base, ca_file=cafile, verify=verify)


def ssl_context(endpoint: Endpoint) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=endpoint.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise EndpointError(f"cannot load CA file {endpoint.ca_file!r}: {exc}") from exc
    if not endpoint.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def api_version_for(settings: LiveSettings) -> str | None:
    """The API version a feature needs, or None for the SDK's default."""
    if settings.api_version:
        return settings.api_version
    if settings.api_key.startswith(_EPHEMERAL_TOKEN_PREFIX):
        return "v1alpha"
    return None


def http_options(endpoint: Endpoint, api_version: str | None) -> types.HttpOptions:
    from google.genai import types

    args: dict[str, Any] = {}
    if not endpoint.is_default or not endpoint.verify:
        args["ssl"] = ssl_context(endpoint)
    return types.HttpOptions(
        base_url=endpoint.base_url,
        api_version=api_version,
        async_client_args=args or None,
    )


def make_client(settings: LiveSettings) -> Client:
    """A genai client for `settings.endpoint`/`ca_file` and `settings.api_key`."""
    from google import genai

    endpoint = resolve_endpoint(settings.endpoint, settings.ca_file, env={})
    return genai.Client(
        api_key=settings.api_key,
        http_options=http_options(endpoint, api_version_for(settings)),
    )
