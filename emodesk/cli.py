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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emodesk",
        description="Spoken conversations with Gemini Live that notice how you sound.",
    )
    parser.add_argument("--version", action="version", version=f"emodesk {__version__}")
    _add_endpoint_options(parser)
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
    _add_endpoint_options(converse, top_level=False)

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

    emulator = sub.add_parser("emulator", help="the local Live emulator (TLS WebSocket server)")
    emulator.add_argument("--port", type=_port, default=0, help="0 picks a free port")
    emulator.add_argument(
        "--faults",
        default="",
        metavar="LIST",
        help="comma-separated KIND@TURN (or KIND@* for every turn), e.g. drop@2,goaway@3; "
        "kinds: " + ", ".join(FAULT_KINDS),
    )

    sub.add_parser("devices", help="audio devices with default rate and latency")
    return parser


# subcommand -> (module, the layer it needs, for the message when it is missing)
_COMMANDS = {
    "converse": ("emodesk.commands.converse", "conversation"),
    "analyze": ("emodesk.commands.analyze", "dsp"),
    "emulator": ("emodesk.commands.emulator", "live"),
    "devices": ("emodesk.commands.devices", "audio"),
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
