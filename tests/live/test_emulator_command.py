"""`emodesk emulator`: prints the endpoint and the CA path, serves, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from emodesk.cli import main


def test_emulator_command_prints_url_and_ca_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emodesk", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        url = lines[0].rsplit(" ", 1)[-1].strip()
        ca = next(line for line in lines if "--ca-file" in line).split()[3]
        assert url.startswith("https://127.0.0.1:")
        assert Path(ca).read_text().startswith("-----BEGIN CERTIFICATE-----")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert not Path(ca).exists()  # the temporary certificate goes with the server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_emulator_command_refuses_a_bad_fault_list(capsys) -> None:
    assert main(["emulator", "--faults", "explode@1"]) == 2
    assert "unknown fault" in capsys.readouterr().err
