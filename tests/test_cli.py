import subprocess
import sys
from pathlib import Path

import pytest

from emodesk import __version__
from emodesk.cli import build_parser, main


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"emodesk {__version__}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--endpoint", "wss://a.test", "converse", "--audio-in", "x.wav"], "wss://a.test"),
        (["converse", "--audio-in", "x.wav", "--endpoint", "wss://b.test"], "wss://b.test"),
        (["converse", "--audio-in", "x.wav"], None),
    ],
)
def test_endpoint_before_or_after_the_subcommand(argv: list[str], expected: str | None) -> None:
    assert build_parser().parse_args(argv).endpoint == expected


def test_unknown_subcommand_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dance"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_version_does_not_import_heavy_packages() -> None:
    code = (
        "import sys\n"
        "from emodesk.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('google.genai', 'numpy', 'pyaudio', 'PySide6') if m in sys.modules]\n"
        "print('heavy:' + ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip().splitlines()[-1] == "heavy:"


@pytest.mark.parametrize(
    ("given", "canonical"), [("kore", "Kore"), ("ZUBENELGENUBI", "Zubenelgenubi"), ("Puck", "Puck")]
)
def test_voices_are_matched_case_insensitively_and_normalised(given: str, canonical: str) -> None:
    args = build_parser().parse_args(["converse", "--audio-in", "x.wav", "--voice", given])
    assert args.voice == canonical


def test_profiles_are_matched_case_insensitively() -> None:
    args = build_parser().parse_args(["converse", "--audio-in", "x.wav", "--profile", "Wellness"])
    assert args.profile == "wellness"
    assert build_parser().parse_args(["converse", "--audio-in", "x.wav"]).profile == "general"


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--voice", "Korr", "argument --voice: unknown voice 'Korr'; choose one of: Puck, "),
        ("--profile", "sales", "argument --profile: unknown profile 'sales'; choose one of: "),
    ],
)
def test_unknown_voice_or_profile_is_a_usage_error_naming_the_choices(
    option: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["converse", "--audio-in", "x.wav", option, value])
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_the_emulator_help_lists_every_fault_kind(capsys: pytest.CaptureFixture[str]) -> None:
    # Stated here, not read from the enum the help is made from.
    kinds = [
        "drop",
        "goaway",
        "goawayreply",
        "close1011",
        "close1007",
        "slow",
        "burst",
        "malformed",
        "droptool",
        "dropreply",
        "badreply",
        "stall",
        "flood",
        "textflood",
        "oddpcm",
        "badrate",
        "goawaysetup",
        "badsetup",
        "nosetup",
        "textreply",
    ]
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for kind in kinds:
        assert kind in shown, kind


@pytest.mark.parametrize("port", ["99999", "-5", "http"])
def test_a_bad_emulator_port_is_a_usage_error(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "--port", port])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--port" in err and "Traceback" not in err


async def test_a_failed_emulator_start_leaves_no_private_key(tmp_path: Path) -> None:
    import socket

    from emodesk.live.emulator.server import EmulatorServer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmulatorServer(port=taken.getsockname()[1])
        with pytest.raises(OSError):
            await server.start()
    assert server.certificate is not None
    assert not server.certificate.cert_file.parent.exists(), "the key was left on disk"


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({}, True),
        ({"DISPLAY": ":0"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False),
        ({"QT_QPA_PLATFORM": "offscreen"}, False),
    ],
)
def test_the_window_without_a_display_is_refused_with_a_way_on(
    env: dict[str, str], refused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emodesk.app import no_display_reason

    monkeypatch.setattr(sys, "platform", "linux")
    reason = no_display_reason(env)
    assert bool(reason) is refused
    if refused:
        assert "emodesk converse" in reason
