"""`emodesk token-server`: mints ephemeral Live tokens for an organisation's clients
until stopped (SIGINT/SIGTERM). Needs `emodesk[server]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from emodesk.live.endpoint import is_loopback


class _Refused(Exception):
    pass


def _read_secret(path: str) -> str:
    try:
        secret = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise _Refused(f"cannot read --client-secret-file: {exc.strerror or exc}") from None
    if len(secret) < 16:
        raise _Refused("the client secret must be at least 16 characters")
    return secret


async def _serve(args: argparse.Namespace) -> int:
    from emodesk.live.asgi import MISSING_EXTRA, AsgiServer
    from emodesk.live.credentials import CredentialError, install_log_redaction, load_api_key
    from emodesk.live.endpoint import EndpointError
    from emodesk.tokenserver.service import Minter, ServiceConfig, build_app

    try:
        api_key = load_api_key()
    except CredentialError as exc:
        raise _Refused(str(exc)) from None
    if not api_key:
        raise _Refused("no API key: set GEMINI_API_KEY or store one with the app (keyring)")
    install_log_redaction(api_key)
    if bool(args.cert) != bool(args.key):
        raise _Refused("--cert and --key go together")
    if not args.cert and not is_loopback(args.host):
        raise _Refused(
            f"{args.host} is not a loopback address: serve HTTPS there (--cert PEM --key PEM)"
        )
    config = ServiceConfig(
        model=args.model,
        ttl_s=args.ttl_minutes * 60.0,
        endpoint=getattr(args, "endpoint", None),
        ca_file=getattr(args, "ca_file", None),
        client_secret=_read_secret(args.client_secret_file) if args.client_secret_file else None,
        per_minute=args.per_minute,
        burst=args.burst,
    )
    try:
        minter = Minter(api_key, config)
        server = AsgiServer(
            build_app(minter, config),
            host=args.host,
            port=args.port,
            certfile=args.cert,
            keyfile=args.key,
            signals=True,
        )
    except EndpointError as exc:
        raise _Refused(str(exc)) from None
    except ImportError:
        raise _Refused(MISSING_EXTRA) from None
    except RuntimeError as exc:
        raise _Refused(str(exc) if MISSING_EXTRA in str(exc) else f"cannot start: {exc}") from None
    try:
        await server.start()
    except OSError as exc:
        raise _Refused(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    scheme = "https" if args.cert else "http"
    print(
        f"token service on {scheme}://{args.host}:{server.port}/v1/token "
        f"(tokens for {args.model}, {args.ttl_minutes:g} min, one use each"
        f"{', clients need the bearer secret' if config.client_secret else ''})",
        flush=True,
    )
    await server.wait()
    print("token service stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    try:
        return asyncio.run(_serve(args))
    except _Refused as exc:
        print(f"emodesk token-server: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
