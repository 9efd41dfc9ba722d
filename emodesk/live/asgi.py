"""An ASGI app served by uvicorn inside a running asyncio loop (the emulator's REST side,
the token server in tests and in `emodesk token-server`).

Needs the optional extra `emodesk[server]` (Starlette, uvicorn). uvicorn's own logging
setup and, when embedded, its signal handlers are left out: they belong to the host
program (the app, the test run), not to a server running beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

# `pip install 'emodesk[server]'` when these are missing.
MISSING_EXTRA = "needs the server extra: pip install 'emodesk[server]' (Starlette and uvicorn)"


class AsgiServer:
    """`await start()`; `port` is then the bound port (0 picks one); `await stop()`.
    `signals`: let uvicorn handle SIGINT/SIGTERM (a process of its own only)."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: str | None = None,
        keyfile: str | None = None,
        signals: bool = False,
    ) -> None:
        try:
            import uvicorn
        except ImportError as exc:
            raise RuntimeError(MISSING_EXTRA) from exc

        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            log_config=None,  # the host program's logging stays as it is
            access_log=False,  # the apps write their own, without secrets
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        server_class = uvicorn.Server if signals else _embedded
        self._server = server_class(config)
        self.host = host
        self.port = port
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="asgi-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
                raise OSError(f"cannot listen on {self.host}:{self.port}")
            await asyncio.sleep(0.01)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind
            raise OSError(f"cannot listen on {self.host}:{self.port}") from None

    async def wait(self) -> None:
        """Until the server stops (a signal when `signals`)."""
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True  # open keep-alive connections are not waited for
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, 5.0)


def _embedded_class() -> Any:
    import uvicorn

    class Embedded(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Embedded


def _embedded(config: Any) -> Any:
    return _embedded_class()(config)
