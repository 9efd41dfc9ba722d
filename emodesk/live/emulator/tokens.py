"""Ephemeral tokens as the emulator keeps them: minted on its REST side
(`POST /v1alpha/auth_tokens`, what `client.auth_tokens.create` sends), checked when a
Live setup arrives on the constrained endpoint.

The rules are the ones the SDK documents for `CreateAuthTokenConfig`: `uses` defaults
to 1 (0: no limit) and resuming a session does not count as a use; `expireTime`
(default 30 minutes) ends every use of the token, `newSessionExpireTime` (default 60
seconds) ends starting new sessions with it. A model given in
`bidiGenerateContentSetup` is locked: a setup asking for another model is refused.

Refusals close with 1008 and a reason that names the token. What close code Google's
service uses for an expired or used-up token is not documented (live-protocol.md, the
SDK and public issues do not say); 1008 (policy violation) is what it uses for a key it
does not accept, and a token is that kind of credential.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

TOKEN_PREFIX = "auth_tokens/"
DEFAULT_EXPIRE_S = 30 * 60
DEFAULT_NEW_SESSION_S = 60.0
MAX_LIFETIME_S = 20 * 3600  # "must be less than 20 hours in the future"

TOKEN_CLOSE_CODE = 1008
TOKEN_UNKNOWN = "Ephemeral token is not valid."
TOKEN_EXPIRED = "Ephemeral token has expired."
TOKEN_NO_NEW_SESSIONS = "Ephemeral token can no longer start new sessions."
TOKEN_USED_UP = "Ephemeral token has no uses left."
TOKEN_WRONG_MODEL = "The model is not allowed by the ephemeral token's constraints."
TOKEN_WRONG_ENDPOINT = (
    "Ephemeral tokens are accepted on v1alpha BidiGenerateContentConstrained only."
)
KEYS_REFUSED = (
    "API key not accepted here: this endpoint takes ephemeral tokens (auth_tokens/...) only."
)


class MintError(ValueError):
    """A create request the service would answer with 400; `str()` says why."""


@dataclass
class Token:
    name: str = field(repr=False)
    expire_at: float
    new_session_expire_at: float
    uses_left: int | None  # None: no limit (uses=0)
    model: str | None = None
    locked: dict[str, Any] = field(default_factory=dict)  # bidiGenerateContentSetup
    field_mask: str | None = None
    sessions: int = 0  # new sessions started with it
    resumptions: int = 0


def _when(value: Any, now: float, default_s: float, what: str) -> float:
    if value is None:
        return now + default_s
    try:
        stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MintError(f"{what} is not a timestamp: {value!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    at = stamp.timestamp()
    if at <= now:
        raise MintError(f"{what} must be in the future")
    if at - now >= MAX_LIFETIME_S:
        raise MintError(f"{what} must be less than 20 hours in the future")
    return at


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")


class TokenStore:
    """The minted tokens, in memory. `clock` (seconds since the epoch) is the service's
    time; tests move it to expire tokens."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tokens: dict[str, Token] = {}

    def __len__(self) -> int:
        return len(self._tokens)

    def get(self, name: str) -> Token | None:
        return self._tokens.get(name)

    def mint(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A create request's JSON body (camelCase, as the SDK sends it) -> the
        response body. Raises `MintError`."""
        now = self.clock()
        expire_at = _when(body.get("expireTime"), now, DEFAULT_EXPIRE_S, "expireTime")
        new_at = _when(
            body.get("newSessionExpireTime"), now, DEFAULT_NEW_SESSION_S, "newSessionExpireTime"
        )
        uses = body.get("uses", 1)
        if not isinstance(uses, int) or isinstance(uses, bool) or uses < 0:
            raise MintError(f"uses must be a whole number >= 0, got {uses!r}")
        setup = body.get("bidiGenerateContentSetup") or {}
        if not isinstance(setup, dict):
            raise MintError("bidiGenerateContentSetup must be an object")
        model = setup.get("model")
        if model is not None and not str(model).startswith("models/"):
            model = f"models/{model}"
        name = TOKEN_PREFIX + secrets.token_hex(32)
        self._tokens[name] = Token(
            name=name,
            expire_at=expire_at,
            new_session_expire_at=min(new_at, expire_at),
            uses_left=None if uses == 0 else uses,
            model=None if model is None else str(model),
            locked=setup,
            field_mask=body.get("fieldMask"),
        )
        self._forget_expired(now)
        return {"name": name}

    def _forget_expired(self, now: float) -> None:
        for name in [n for n, t in self._tokens.items() if t.expire_at < now - 3600]:
            del self._tokens[name]

    def admit(self, name: str, *, model: str, resuming: bool) -> str | None:
        """Spends a use of `name` for a new session (not for a resumption); the refusal
        reason when it may not connect, else None."""
        token = self._tokens.get(name)
        if token is None:
            return TOKEN_UNKNOWN
        now = self.clock()
        if now >= token.expire_at:
            return TOKEN_EXPIRED
        if token.model is not None and model != token.model:
            return TOKEN_WRONG_MODEL
        if resuming:
            token.resumptions += 1
            return None
        if now >= token.new_session_expire_at:
            return TOKEN_NO_NEW_SESSIONS
        if token.uses_left is not None:
            if token.uses_left <= 0:
                return TOKEN_USED_UP
            token.uses_left -= 1
        token.sessions += 1
        return None
