"""*Test key*: whether Google accepts an API key, and when the check fails, why, in plain
words. A check that never reached Google (no network, a name that does not resolve, a
secure connection that failed, no answer in time) says so and does not blame the key;
only Google's own answer can say the key was rejected or its quota is used up.

`explain_failure` is pure: it reads the exception and the chain of causes under it
(google-genai's `APIError`, httpx's or httpx2's transport errors, `ssl`, `socket`).
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass
from enum import Enum

from emodesk.live.credentials import redact

GOOGLE_API = "generativelanguage.googleapis.com"
CHECK_TIMEOUT_S = 10.0


class Failure(Enum):
    NO_NETWORK = "no network"
    DNS = "name lookup"
    TLS = "secure connection"
    TIMEOUT = "timeout"
    REJECTED = "rejected key"
    QUOTA = "quota"
    SERVER = "server error"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Explained:
    failure: Failure
    message: str  # for the user; never holds the key


# Errno values that mean the machine could not reach the server at all.
_UNREACHABLE = {
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EADDRNOTAVAIL,
}
# httpx / httpx2 / httpcore / aiohttp transport errors, by class name (the SDK may use
# any of these libraries; their classes share names, not bases).
_TIMEOUT_NAMES = {"TimeoutException", "ConnectTimeout", "ReadTimeout", "WriteTimeout",
                  "PoolTimeout", "ServerTimeoutError"}  # fmt: skip
_NETWORK_NAMES = {"ConnectError", "NetworkError", "ProxyError", "RemoteProtocolError",
                  "ClientConnectorError", "ServerDisconnectedError", "ReadError",
                  "WriteError"}  # fmt: skip


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, then its causes (explicit first, else the context), without loops."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen) and len(seen) < 32:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _api_error(exc: BaseException) -> Explained | None:
    """Google's answer (google.genai.errors.APIError): the network worked."""
    from google.genai import errors

    if not isinstance(exc, errors.APIError):
        return None
    code = int(exc.code or 0)
    status = str(exc.status or "")
    detail = redact(str(exc.message or "")).strip()
    text = f"{detail} {exc.details}".lower()
    said = f" (Google said: {detail[:160]})" if detail else ""
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        return Explained(
            Failure.QUOTA,
            "Google knows the key, but its quota is used up for now (too many requests "
            "or no free tier left): wait a minute and try again, or check the plan's "
            "limits in Google AI Studio",
        )
    if code == 403 or status == "PERMISSION_DENIED":
        return Explained(
            Failure.REJECTED,
            f"Google refused the key: it may not be allowed to use the Gemini API{said}",
        )
    if code == 401 or "api_key_invalid" in text or "api key not valid" in text:
        return Explained(
            Failure.REJECTED, f"Google rejected the key: it is not a valid Gemini API key{said}"
        )
    if code >= 500:
        return Explained(
            Failure.SERVER,
            f"Google's service had a problem ({code}); the key was not judged: try again later",
        )
    return Explained(Failure.OTHER, f"Google answered {code} {status}{said}".rstrip())


def explain_failure(exc: BaseException, host: str = GOOGLE_API, what: str = "key") -> Explained:
    """What went wrong with a check of a key (or a token: `what`) that raised `exc`, in
    plain words."""
    explained = _explain(exc, host)
    return Explained(explained.failure, explained.message.replace("the key", f"the {what}"))


def _explain(exc: BaseException, host: str) -> Explained:
    chain = _chain(exc)
    for link in chain:
        answered = _api_error(link)
        if answered is not None:
            return answered
    for link in chain:
        if isinstance(link, ssl.SSLCertVerificationError):
            return Explained(
                Failure.TLS,
                f"the secure connection to {host} failed: its certificate is not trusted "
                "(a network that intercepts HTTPS, or a wrong system clock?); "
                "the key was not checked",
            )
        if isinstance(link, ssl.SSLError):
            reason = getattr(link, "reason", None) or "TLS error"
            return Explained(
                Failure.TLS,
                f"the secure connection to {host} failed ({reason}); the key was not checked",
            )
    for link in chain:
        if isinstance(link, socket.gaierror):
            return Explained(
                Failure.DNS,
                f"the address of {host} could not be looked up (DNS): check the network "
                "connection; the key was not checked",
            )
    for link in chain:
        if isinstance(link, TimeoutError) or _names(link) & _TIMEOUT_NAMES:
            return Explained(
                Failure.TIMEOUT,
                f"{host} did not answer in time (a slow or blocked connection); "
                "the key was not checked",
            )
    for link in chain:
        if (isinstance(link, OSError) and link.errno in _UNREACHABLE) or isinstance(
            link, ConnectionError
        ):
            break
    else:
        if not any(_names(link) & _NETWORK_NAMES for link in chain):
            name = type(exc).__name__
            return Explained(Failure.OTHER, f"the check failed ({name}: {redact(str(exc))[:160]})")
    return Explained(
        Failure.NO_NETWORK,
        f"could not connect to {host}: no network connection, or a firewall or proxy "
        "blocks it; the key was not checked",
    )


def check_api_key(
    key: str, *, base_url: str | None = None, timeout_s: float = CHECK_TIMEOUT_S
) -> tuple[bool, str]:
    """(works, why): lists one model with `key`, which proves it without opening a Live
    session (`base_url`: another server, for tests). Blocks: run it on an executor."""
    from urllib.parse import urlsplit

    from google import genai
    from google.genai import types

    host = urlsplit(base_url).hostname or GOOGLE_API if base_url else GOOGLE_API
    options = types.HttpOptions(timeout=int(timeout_s * 1000), base_url=base_url)
    try:
        client = genai.Client(api_key=key, http_options=options)
        next(iter(client.models.list(config={"page_size": 1})), None)
    except Exception as exc:
        return False, explain_failure(exc, host).message
    return True, "the key works"
