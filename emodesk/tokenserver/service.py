"""`POST /v1/token` -> a fresh ephemeral Live token; `GET /healthz`.

Each token comes from `client.aio.auth_tokens.create` with the key this service holds:
`uses=1`, expiring `ttl_s` from now (new sessions only within `new_session_s`), locked
(`live_connect_constraints`) to the Live model and the connect fields every EmoDesk
client sends the same way (audio replies, both transcriptions, context compression);
the voice, the instructions and the tools stay the client's, as `lock_additional_fields=[]`
leaves every field not given free.

Clients may be asked for a bearer secret; each client (by its address) has a token
bucket of `burst` requests refilled at `per_minute`. Every request writes one JSON line
to the `emodesk.tokenserver.access` log: time, client address, method, path, status,
milliseconds, and never a token, the secret or the key. Nothing is kept between
requests but the rate buckets, so instances behind a load balancer need no shared state.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import ssl
import time
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emodesk.live.config import COMPRESSION_TARGET_TOKENS, COMPRESSION_TRIGGER_TOKENS
from emodesk.live.settings import DEFAULT_MODEL

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

access_log = logging.getLogger("emodesk.tokenserver.access")
log = logging.getLogger(__name__)

MAX_BUCKETS = 10_000  # client addresses remembered for the rate limit


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    model: str = DEFAULT_MODEL
    ttl_s: float = 10 * 60.0  # a token's whole life
    new_session_s: float = 60.0  # new sessions must start within this
    uses: int = 1
    endpoint: str | None = None  # another Live service (the emulator); None: Google's
    ca_file: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    per_minute: float = 30.0
    burst: int = 10


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")


class Minter:
    """Holds the API key (inside its genai client) and mints tokens with it."""

    def __init__(self, api_key: str, config: ServiceConfig) -> None:
        from google import genai
        from google.genai import types

        from emodesk.live.endpoint import resolve_endpoint, ssl_context

        endpoint = resolve_endpoint(config.endpoint, config.ca_file, env={})
        args: dict[str, Any] = {}
        if not endpoint.is_default:
            context: ssl.SSLContext = ssl_context(endpoint)
            args = {"verify": context, "ssl": context}  # httpx takes verify, websockets ssl
        self.config = config
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=endpoint.base_url, api_version="v1alpha", async_client_args=args or None
            ),
        )

    def constraints(self) -> Any:
        from google.genai import types

        model = self.config.model
        return types.LiveConnectConstraints(
            model=model if model.startswith("models/") else f"models/{model}",
            config=types.LiveConnectConfig(
                response_modalities=[types.Modality.AUDIO],
                input_audio_transcription=types.AudioTranscriptionConfig(),
                output_audio_transcription=types.AudioTranscriptionConfig(),
                context_window_compression=types.ContextWindowCompressionConfig(
                    trigger_tokens=COMPRESSION_TRIGGER_TOKENS,
                    sliding_window=types.SlidingWindow(target_tokens=COMPRESSION_TARGET_TOKENS),
                ),
            ),
        )

    async def mint(self) -> dict[str, Any]:
        from google.genai import errors, types

        now = time.time()
        expire_at = now + self.config.ttl_s
        new_session_at = now + min(self.config.new_session_s, self.config.ttl_s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", errors.ExperimentalWarning)
            token = await self._client.aio.auth_tokens.create(
                config=types.CreateAuthTokenConfig(
                    uses=self.config.uses,
                    expire_time=dt.datetime.fromtimestamp(expire_at, dt.UTC),
                    new_session_expire_time=dt.datetime.fromtimestamp(new_session_at, dt.UTC),
                    live_connect_constraints=self.constraints(),
                    lock_additional_fields=[],
                )
            )
        if not token.name:
            raise RuntimeError("the Live service answered without a token name")
        return {
            "token": token.name,
            "expire_time": iso(expire_at),
            "new_session_expire_time": iso(new_session_at),
            "uses": self.config.uses,
            "model": self.config.model,
        }


class RateLimiter:
    """A token bucket per client: `burst` at once, `per_minute` refilled."""

    def __init__(
        self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(1, burst))
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str) -> float:
        """0 when `client` may go on now, else the seconds until it may."""
        now = self._clock()
        level, then = self._buckets.pop(client, (self.burst, now))
        level = min(self.burst, level + (now - then) * self.rate)
        wait = 0.0
        if level >= 1.0:
            level -= 1.0
        else:
            wait = (1.0 - level) / self.rate if self.rate > 0 else 60.0
        self._buckets[client] = (level, now)
        while len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        return wait


def build_app(
    minter: Any, config: ServiceConfig, *, clock: Callable[[], float] | None = None
) -> Any:
    """The Starlette app. `minter` has `async mint() -> dict` (a `Minter`)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    limiter = RateLimiter(config.per_minute, config.burst, clock or time.monotonic)
    secret = (config.client_secret or "").encode()

    def authorised(request: Request) -> bool:
        if not secret:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), secret)

    async def token(request: Request) -> Response:
        if not authorised(request):
            return JSONResponse(
                {"error": "unauthorised"}, 401, headers={"WWW-Authenticate": "Bearer"}
            )
        client = request.client.host if request.client else "?"
        wait = limiter.allow(client)
        if wait > 0:
            return JSONResponse(
                {"error": "too many requests"}, 429, headers={"Retry-After": str(int(wait) + 1)}
            )
        try:
            body = await minter.mint()
        except Exception as exc:  # the Live service's answer, whatever it was
            code = getattr(exc, "code", None)
            log.warning("minting failed: %s (%s)", type(exc).__name__, code)
            return JSONResponse({"error": "the Live service did not mint a token"}, 502)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/v1/token", token, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    return _AccessLog(app)


class _AccessLog:
    """ASGI middleware: one JSON line per HTTP request, without headers or bodies."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("?", 0)
            access_log.info(
                json.dumps(
                    {
                        "ts": iso(time.time()),
                        "client": client[0],
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                    }
                )
            )
