"""Ephemeral Live tokens from an organisation's token service (`--token-url`).

The API key stays on the token service (`emodesk token-server`); the app asks it for a
short-lived token (`auth_tokens/...`) before connecting and uses that like a key (the
SDK then takes the v1alpha constrained endpoint). `TokenKeeper` decides when a new one
is needed: for a new Live session whenever the one held has no uses left or cannot
start sessions any more, and before a resumption when the one held is spent or near
its expiry (a resumption does not spend a use, so if the service cannot be reached the
unexpired old token is tried). A token the Live service refuses is never used again.

The client authenticates to the token service with a bearer secret when one is set
(`EMODESK_TOKEN_SECRET`); the service's certificate is checked against the system's
CAs plus `--ca-file` (or `EMODESK_TOKEN_CA_FILE`) when given.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import ssl
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from emodesk import __version__

TOKEN_PREFIX = "auth_tokens/"
ENV_TOKEN_URL = "EMODESK_TOKEN_URL"
ENV_TOKEN_SECRET = "EMODESK_TOKEN_SECRET"
ENV_TOKEN_CA_FILE = "EMODESK_TOKEN_CA_FILE"  # a private CA for the token service alone
# A token this close to an end is treated as past it (a connect takes a moment).
MARGIN_S = 20.0
_RESPONSE_LIMIT = 64 * 1024


def is_token(credential: str) -> bool:
    return credential.strip().startswith(TOKEN_PREFIX)


class TokenError(RuntimeError):
    """No token could be had from the token service; `str()` says why, for the user."""

    def __init__(self, reason: str, *, retryable: bool = True, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status


@dataclass(frozen=True, slots=True)
class EphemeralToken:
    name: str = field(repr=False)
    expire_at: float  # seconds since the epoch: no use of it after this
    new_session_expire_at: float  # no new session after this
    uses: int | None = 1  # new sessions it may start; None: no limit


class TokenSource(Protocol):
    async def fetch(self) -> EphemeralToken: ...


def check_token_url(url: str) -> str:
    """The URL, stripped; `ValueError` unless it is an https:// URL with a host."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError(f"{url!r}: the token URL must be an https:// URL (a token is a secret)")
    return url


def _stamp(value: object, what: str) -> float:
    try:
        stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise TokenError(f"the token service sent an unreadable {what}", retryable=False) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def parse_token_response(body: Mapping[str, object]) -> EphemeralToken:
    """The token service's JSON answer -> a token; `TokenError` if it is not one."""
    name = body.get("token")
    if not isinstance(name, str) or not name.startswith(TOKEN_PREFIX):
        raise TokenError("the token service's answer holds no auth_tokens/ token", retryable=False)
    expire_at = _stamp(body.get("expire_time"), "expire_time")
    new_session = body.get("new_session_expire_time")
    uses = body.get("uses", 1)
    return EphemeralToken(
        name=name,
        expire_at=expire_at,
        new_session_expire_at=(
            expire_at if new_session is None else _stamp(new_session, "new_session_expire_time")
        ),
        uses=None if uses == 0 else (uses if isinstance(uses, int) else 1),
    )


class HttpTokenSource:
    """`POST url` (JSON, empty body) answered with `{"token", "expire_time",
    "new_session_expire_time", "uses"}` by `emodesk token-server` or anything alike."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: str | None = None,
        secret: str | None = None,
        timeout_s: float = 10.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.url = check_token_url(url)
        env = os.environ if env is None else env
        self._secret = (secret if secret is not None else env.get(ENV_TOKEN_SECRET, "")).strip()
        self._ca_file = ca_file or env.get(ENV_TOKEN_CA_FILE, "").strip() or None
        self._timeout_s = timeout_s

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self._ca_file:
            try:
                context.load_verify_locations(cafile=self._ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise TokenError(
                    f"cannot load CA file {self._ca_file!r}: {exc}", retryable=False
                ) from exc
        return context

    async def fetch(self) -> EphemeralToken:
        return await asyncio.to_thread(self._fetch)

    def _fetch(self) -> EphemeralToken:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"emodesk/{__version__}",
        }
        if self._secret:
            headers["Authorization"] = f"Bearer {self._secret}"
        request = urllib.request.Request(self.url, data=b"{}", headers=headers, method="POST")
        host = urlsplit(self.url).hostname
        try:
            with urllib.request.urlopen(
                request, timeout=self._timeout_s, context=self._context()
            ) as response:
                raw = response.read(_RESPONSE_LIMIT)
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status in (401, 403):
                raise TokenError(
                    f"the token service at {host} refused this client (HTTP {status}); "
                    f"check its secret ({ENV_TOKEN_SECRET})",
                    retryable=False,
                    status=status,
                ) from None
            raise TokenError(
                f"the token service at {host} answered HTTP {status}",
                retryable=status == 429 or status >= 500,
                status=status,
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise TokenError(
                f"the token service's certificate is not trusted ({exc.verify_message}); "
                "check --ca-file",
                retryable=False,
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", None) or exc
            raise TokenError(f"cannot reach the token service at {host}: {why}") from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise TokenError("the token service's answer is not JSON", retryable=False) from None
        if not isinstance(body, dict):
            raise TokenError("the token service's answer is not a JSON object", retryable=False)
        return parse_token_response(body)


class TokenKeeper:
    """The token a Live session connects with, fetched from `source` when needed."""

    def __init__(
        self,
        source: TokenSource,
        *,
        clock: Callable[[], float] = time.time,
        margin_s: float = MARGIN_S,
    ) -> None:
        self.source = source
        self._clock = clock
        self._margin_s = margin_s
        self._token: EphemeralToken | None = None
        self._uses_left: int | None = None
        self._fresh = False  # the token held was fetched for this connect
        self.fetches = 0

    def _usable(self, resuming: bool) -> bool:
        token = self._token
        if token is None:
            return False
        soon = self._clock() + self._margin_s
        if self._uses_left is not None and self._uses_left <= 0:
            return False  # spent: a new session needs a new token, and so (we ask) does a resume
        if resuming:
            return soon < token.expire_at
        return soon < min(token.new_session_expire_at, token.expire_at)

    async def for_connect(self, *, resuming: bool) -> str:
        """The token to connect with now; `TokenError` when none can be had."""
        self._fresh = False
        if self._usable(resuming):
            assert self._token is not None
            return self._token.name
        old = self._token
        try:
            token = await self.source.fetch()
        except TokenError:
            # A resumption spends no use: an unexpired old token is worth a try.
            if resuming and old is not None and self._clock() < old.expire_at:
                return old.name
            raise
        self.fetches += 1
        self._token, self._uses_left, self._fresh = token, token.uses, True
        return token.name

    @property
    def fresh(self) -> bool:
        """The token of the last `for_connect` was fetched for it (not held over)."""
        return self._fresh

    def connected(self, *, resuming: bool) -> None:
        """A session was opened with the token: a new one spends a use."""
        if not resuming and self._uses_left is not None:
            self._uses_left -= 1

    def refused(self) -> None:
        """The Live service refused the token: it is not offered again."""
        self._token = None
        self._uses_left = None


async def probe_token(
    token: str | None,
    *,
    endpoint: str | None = None,
    ca_file: str | None = None,
    token_url: str | None = None,
    model: str | None = None,
    timeout_s: float = 15.0,
) -> tuple[bool, str]:
    """*Test key* for tokens: (works, what to tell the user). A token can do one thing,
    open a Live session, so that is the test: the session is set up and closed at once
    (which spends one of the token's uses). Without `token`, one is fetched from
    `token_url` first, which tests the token service as well."""
    from google.genai import errors

    from emodesk.live.endpoint import EndpointError, make_client
    from emodesk.live.settings import DEFAULT_MODEL, LiveSettings

    fetched = token is None
    if token is None:
        if not token_url:
            return False, "no token and no token service to test"
        try:
            got = await HttpTokenSource(token_url, ca_file=ca_file).fetch()
        except (TokenError, ValueError) as exc:
            return False, f"no token from the token service: {exc}"
        token = got.name
    settings = LiveSettings(
        model=model or DEFAULT_MODEL, endpoint=endpoint, ca_file=ca_file, api_key=token.strip()
    )

    async def connect() -> None:
        from google.genai import types

        from emodesk.live.config import model_name

        client = await asyncio.to_thread(make_client, settings)
        config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", errors.ExperimentalWarning)
            async with client.aio.live.connect(model=model_name(settings), config=config):
                pass

    try:
        async with asyncio.timeout(timeout_s):
            await connect()
    except errors.APIError as exc:
        detail = exc.details if isinstance(exc.details, str) else str(exc.message or "")
        why = f"{exc.code}: {detail}".strip().rstrip(":")
        return False, f"the token was refused ({why[:160]})"
    except (EndpointError, ValueError) as exc:
        return False, f"cannot test the token here: {exc}"
    except (TimeoutError, OSError) as exc:  # never reached: say why, in plain words
        from emodesk.live.keycheck import explain_failure

        host = urlsplit(endpoint).hostname if endpoint else None
        return False, explain_failure(exc, host or "the Live service", what="token").message
    if fetched:
        return True, "the token service works: its token opened a Live session"
    return True, "the token works (it opened a Live session, which used one of its uses)"
