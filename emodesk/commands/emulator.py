"""`emodesk emulator`: the local Live emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys


async def _serve(
    port: int, faults: str, rest_port: int | None = None, require_tokens: bool = False
) -> int:
    from emodesk.live.emulator.faults import FaultSpecError, parse_faults
    from emodesk.live.emulator.server import EmulatorServer

    try:
        plan = parse_faults(faults)
    except FaultSpecError as exc:
        print(f"emodesk emulator: {exc}", file=sys.stderr)
        return 2
    server = EmulatorServer(port=port, faults=plan, require_tokens=require_tokens)
    rest = None
    try:
        await server.start()
    except OSError as exc:
        print(f"emodesk emulator: cannot listen on port {port}: {exc}", file=sys.stderr)
        return 1
    if rest_port is not None:
        try:
            from emodesk.live.emulator.rest import RestSide

            rest = RestSide(server, rest_port)
            await rest.start()
        except (OSError, RuntimeError, ImportError) as exc:
            await server.stop()
            why = (
                "needs emodesk[server] (Starlette, uvicorn)"
                if isinstance(exc, ImportError)
                else exc
            )
            print(f"emodesk emulator: REST side: {why}", file=sys.stderr)
            return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    print(f"Live emulator (synthetic replies) listening on {server.url}", flush=True)
    print(f"  endpoint: --endpoint {server.url}   (or EMODESK_ENDPOINT)", flush=True)
    print(f"  CA file:  --ca-file {server.ca_file}   (or EMODESK_CA_FILE)", flush=True)
    if rest is not None:
        print(f"  REST:     {rest.url}   (token-server --endpoint)", flush=True)
    if require_tokens:
        print("  tokens:   required (plain API keys are refused)", flush=True)
    if plan:
        print(f"  faults:   {faults}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        await stop.wait()
    finally:
        if rest is not None:
            await rest.stop()
        await server.stop()
    print("emulator stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(
            _serve(
                int(args.port),
                str(args.faults or ""),
                getattr(args, "rest_port", None),
                bool(getattr(args, "require_tokens", False)),
            )
        )
    except KeyboardInterrupt:
        return 0
