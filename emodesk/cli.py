"""`emodesk` command line: parses arguments and hands each subcommand to its module.

Subcommand modules are imported only when chosen, so `emodesk --version` and the
GUI's start-up do not pay for google-genai, numpy or PyAudio they do not use.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from datetime import date

from emodesk import __version__
from emodesk.core.privacy import use_private_umask
from emodesk.live.emulator.faults import FaultKind


def _one_of(what: str, names: Sequence[str]) -> Callable[[str], str]:
    """An argparse type: `names` case-insensitively, given back in their own spelling."""

    def parse(value: str) -> str:
        by_lower = {name.lower(): name for name in names}
        try:
            return by_lower[value.strip().lower()]
        except KeyError:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {value!r}; choose one of: {', '.join(names)}"
            ) from None

    return parse


def _voice(value: str) -> str:
    from emodesk.core.settings import VOICES  # core is pure Python: cheap to import

    return _one_of("voice", VOICES)(value)


def _profile(value: str) -> str:
    from emodesk.core.profiles import PROFILES

    return _one_of("profile", tuple(PROFILES))(value)


def _add_endpoint_options(parser: argparse.ArgumentParser, *, top_level: bool = True) -> None:
    # Given before or after the subcommand; a subcommand's unset option must not
    # overwrite the top-level value, hence SUPPRESS there.
    default = None if top_level else argparse.SUPPRESS
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        default=default,
        help="a Live endpoint that speaks Google's protocol (env EMODESK_ENDPOINT); "
        "default: Google's, or the local emulator when no API key is set",
    )
    parser.add_argument(
        "--ca-file",
        metavar="PEM",
        default=default,
        help="CA certificate to trust for --endpoint (env EMODESK_CA_FILE)",
    )


def _add_token_url(parser: argparse.ArgumentParser, *, top_level: bool = True) -> None:
    parser.add_argument(
        "--token-url",
        metavar="URL",
        default=None if top_level else argparse.SUPPRESS,
        help="your organisation's token service (emodesk token-server): each Live session "
        "gets a short-lived token from it, and no API key is needed here "
        "(env EMODESK_TOKEN_URL; its bearer secret: EMODESK_TOKEN_SECRET)",
    )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


# For --help; the faults module is standard library only, cheap to import here.
FAULT_KINDS = tuple(FaultKind)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {port}")
    return port


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emodesk",
        description="Spoken conversations with Gemini Live that notice how you sound.",
    )
    parser.add_argument("--version", action="version", version=f"emodesk {__version__}")
    _add_endpoint_options(parser)
    _add_token_url(parser)
    parser.add_argument("--offline", action="store_true", help="use the local Live emulator")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    converse = sub.add_parser(
        "converse", help="one headless conversation from a WAV file, through the same controller"
    )
    converse.add_argument(
        "--audio-in", required=True, metavar="FILE.wav", help="what you say (any WAV)"
    )
    converse.add_argument("--audio-out", metavar="FILE.wav", help="record the spoken replies")
    converse.add_argument(
        "--turns",
        choices=("split-by-silence", "one"),
        default="split-by-silence",
        help="one push-to-talk turn per utterance (default) or the whole file as one",
    )
    converse.add_argument(
        "--voice", type=_voice, default="Puck", help="reply voice, e.g. Kore (default Puck)"
    )
    converse.add_argument(
        "--profile",
        type=_profile,
        default="general",
        help="general, support, tutor or wellness (default general)",
    )
    converse.add_argument(
        "--consent",
        choices=("yes", "no"),
        default="no",
        help="estimate emotion (default no: nothing emotional is computed or stored)",
    )
    converse.add_argument("--csv", metavar="OUT.csv", help="write the emotion timeline")
    converse.add_argument(
        "--device", action="store_true", help="use the microphone and speaker, not files"
    )
    converse.add_argument("--db", metavar="PATH", help="session history database")
    converse.add_argument(
        "--knowledge",
        metavar="DIR",
        help="a folder of Markdown/text files the support profile searches (indexed locally)",
    )
    converse.add_argument(
        "--course",
        metavar="DIR",
        help="a folder of Markdown topics the tutor profile teaches from (indexed locally)",
    )
    _add_endpoint_options(converse, top_level=False)
    _add_token_url(converse, top_level=False)

    analyze = sub.add_parser("analyze", help="local acoustic emotion per utterance of a WAV file")
    analyze.add_argument(
        "file",
        metavar="FILE.wav",
        help="a PCM WAV recording (8/16/24/32-bit integer or 32-bit float, any rate, "
        "mono or stereo); convert other formats first, e.g. `sox in.flac out.wav`",
    )
    analyze.add_argument(
        "--csv", metavar="OUT.csv", help="also write the readings as CSV (the design's columns)"
    )
    analyze.add_argument(
        "--json", metavar="OUT.json", help="also write the readings and metadata as JSON"
    )

    evaluate = sub.add_parser(
        "evaluate", help="the local estimator on a labelled corpus (RAVDESS, CREMA-D or a CSV)"
    )
    evaluate.add_argument(
        "dir",
        metavar="DIR",
        help="a folder of RAVDESS or CREMA-D WAV files (any depth), or a CSV of "
        "path,label[,speaker] rows (or a folder holding labels.csv)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.add_argument("--plot", metavar="FILE.png", help="also draw the confusion matrix")
    evaluate.add_argument(
        "--warmup-turns",
        type=int,
        default=3,
        metavar="N",
        help="files per speaker judged against the prior before their baseline (default 3)",
    )

    emulator = sub.add_parser("emulator", help="the local Live emulator (TLS WebSocket server)")
    emulator.add_argument("--port", type=_port, default=0, help="0 picks a free port")
    emulator.add_argument(
        "--faults",
        default="",
        metavar="LIST",
        help="comma-separated KIND@TURN (or KIND@* for every turn), e.g. drop@2,goaway@3; "
        "kinds: " + ", ".join(FAULT_KINDS),
    )
    emulator.add_argument(
        "--rest-port",
        type=_port,
        default=None,
        help="also serve the REST side (auth_tokens, for token-server --endpoint) on this "
        "port (0 picks one; needs emodesk[server])",
    )
    emulator.add_argument(
        "--require-tokens",
        action="store_true",
        help="refuse plain API keys: connect with ephemeral tokens only",
    )

    tokens = sub.add_parser(
        "token-server",
        help="mint ephemeral Live tokens for your organisation's clients (HTTPS service)",
    )
    tokens.add_argument("--port", type=_port, required=True, help="0 picks a free port")
    tokens.add_argument("--host", default="127.0.0.1", help="address to listen on")
    tokens.add_argument(
        "--client-secret-file",
        metavar="F",
        help="clients must send this file's secret as a bearer token (EMODESK_TOKEN_SECRET)",
    )
    tokens.add_argument("--cert", metavar="PEM", help="TLS certificate (chain) to serve")
    tokens.add_argument("--key", metavar="PEM", help="TLS private key for --cert")
    tokens.add_argument(
        "--model", default="gemini-3.1-flash-live-preview", help="the Live model tokens allow"
    )
    tokens.add_argument(
        "--ttl-minutes", type=_positive, default=10.0, help="a token's life (default 10)"
    )
    tokens.add_argument(
        "--per-minute", type=_positive, default=30.0, help="tokens per client a minute (30)"
    )
    tokens.add_argument("--burst", type=int, default=10, help="tokens a client may take at once")
    _add_endpoint_options(tokens, top_level=False)

    sub.add_parser("devices", help="audio devices with default rate and latency")

    report = sub.add_parser("report", help="the daily or weekly report as HTML or PDF")
    when = report.add_mutually_exclusive_group()
    when.add_argument("--day", type=_day, metavar="YYYY-MM-DD", help="one day (default today)")
    when.add_argument("--days", type=int, metavar="N", help="the N days ending today")
    report.add_argument("--out", required=True, metavar="FILE", help="FILE.html or FILE.pdf")
    report.add_argument("--db", metavar="PATH", help="the history file (default: the app's)")
    return parser


# subcommand -> (module, the layer it needs, for the message when it is missing)
_COMMANDS = {
    "converse": ("emodesk.commands.converse", "conversation"),
    "analyze": ("emodesk.commands.analyze", "dsp"),
    "evaluate": ("emodesk.commands.evaluate", "dsp"),
    "emulator": ("emodesk.commands.emulator", "live"),
    "token-server": ("emodesk.commands.token_server", "tokenserver"),
    "devices": ("emodesk.commands.devices", "audio"),
    "report": ("emodesk.commands.report", "ui"),
    None: ("emodesk.app", "ui"),
}


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything is written: the history (with sqlite's WAL and SHM), the log, the
    # settings and exports are personal data, created readable by their owner only.
    use_private_umask()
    args = build_parser().parse_args(argv)
    module_name, layer = _COMMANDS[args.command]
    if importlib.util.find_spec(module_name) is None:
        what = f"`emodesk {args.command}`" if args.command else "the desktop app"
        print(f"emodesk: {what} is not built yet (the {layer} layer is missing)", file=sys.stderr)
        return 2
    module = importlib.import_module(module_name)
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
