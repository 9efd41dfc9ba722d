"""`emodesk devices` and choosing a device by name on the real (null-sink) stack."""

from __future__ import annotations

import argparse
import io

import pytest

from emodesk.audio import choose_device, list_devices, open_portaudio
from emodesk.commands import devices as devices_command
from tests.support.pulse import PulseStack

pytestmark = pytest.mark.audio_stack


def test_devices_command_prints_a_table_with_the_defaults_marked(pulse: PulseStack) -> None:
    out = io.StringIO()
    assert devices_command.run(argparse.Namespace(), out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:4] == ["#", "in", "out", "name"]
    default_row = next(line for line in lines[1:] if line.split()[3] == "default")
    assert "ALSA" in default_row and "*input,output" in default_row
    assert "in " in default_row and "out " in default_row  # latencies in ms


def test_a_saved_device_that_is_gone_falls_back_to_the_default(pulse: PulseStack) -> None:
    pa = open_portaudio()
    try:
        names = {d.name for d in list_devices(pa)}
        assert "pulse" in names
        assert choose_device(pa, "pulse", "input").name == "pulse"
        assert choose_device(pa, "USB headset (unplugged)", "output").is_default_output
    finally:
        pa.terminate()
