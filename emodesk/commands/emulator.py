"""`emodesk emulator`: the local Live emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys


async def _serve(port: int, faults: str) -> int:
    from emodesk.live.emulator.faults import FaultSpecError, parse_faults
    from emodesk.live.emulator.server import EmulatorServer

    try:
        plan = parse_faults(faults)
    except FaultSpecError as exc:
        print(f"emodesk emulator: {exc}", file=sys.stderr)
        return 2
    server = EmulatorServer(port=port, faults=plan)
    try:
        await server.start()
    except OSError as exc:
        print(f"emodesk emulator: cannot listen on port {port}: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    print(f"Live emulator (synthetic replies) listening on {server.url}", flush=True)
    print(f"  endpoint: --endpoint {server.url}   (or EMODESK_ENDPOINT)", flush=True)
    print(f"  CA file:  --ca-file {server.ca_file}   (or EMODESK_CA_FILE)", flush=True)
    if plan:
        print(f"  faults:   {faults}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
    print("emulator stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_serve(int(args.port), str(args.faults or "")))
    except KeyboardInterrupt:
        return 0
