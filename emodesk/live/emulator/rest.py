"""The emulator's REST side: what `client.auth_tokens.create` calls, on a port of its own
(the WebSocket server answers GET upgrades only), with the emulator's certificate.

`POST /v1alpha/auth_tokens` with the API key in `x-goog-api-key` mints a token into the
emulator's `TokenStore` and answers `{"name": "auth_tokens/..."}`; a missing or
unaccepted key is 401/403 in Google's error shape, an ephemeral token used as the key
is 403 (tokens cannot mint tokens). Needs the `emodesk[server]` extra.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from emodesk.live.asgi import AsgiServer
from emodesk.live.emulator.tokens import TOKEN_PREFIX, MintError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from emodesk.live.emulator.server import EmulatorServer


def _error(code: int, status: str, message: str) -> JSONResponse:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"code": code, "message": message, "status": status}}, code)


def build_app(server: EmulatorServer) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def create_token(request: Request) -> JSONResponse:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key") or ""
        if not key:
            return _error(401, "UNAUTHENTICATED", "Method doesn't allow unregistered callers.")
        if key.startswith(TOKEN_PREFIX) or (
            server.api_keys is not None and key not in server.api_keys
        ):
            return _error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
            )
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not isinstance(body, dict):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        try:
            minted = server.tokens.mint(body)
        except MintError as exc:
            return _error(400, "INVALID_ARGUMENT", str(exc))
        server.minted.append(body)
        return JSONResponse(minted)

    async def not_found(request: Request) -> JSONResponse:
        return _error(404, "NOT_FOUND", f"no such method: {request.method} {request.url.path}")

    return Starlette(
        routes=[
            Route("/v1alpha/auth_tokens", create_token, methods=["POST"]),
            Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]
    )


class RestSide:
    """The REST side of a started `EmulatorServer`: `await start()`, `url`, `await stop()`."""

    def __init__(self, server: EmulatorServer, port: int = 0) -> None:
        if server.certificate is None:
            raise RuntimeError("start the emulator first: the REST side uses its certificate")
        self.server = server
        self._asgi = AsgiServer(
            build_app(server),
            host=server.host,
            port=port,
            certfile=str(server.certificate.cert_file),
            keyfile=str(server.certificate.key_file),
        )

    @property
    def port(self) -> int:
        return self._asgi.port

    @property
    def url(self) -> str:
        return f"https://{self.server.host}:{self._asgi.port}"

    async def start(self) -> None:
        await self._asgi.start()

    async def stop(self) -> None:
        await self._asgi.stop()

    async def __aenter__(self) -> RestSide:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
