"""`emodesk devices`: the audio devices PortAudio sees, with default rate and latency,
and the sound server's own sources and sinks (PulseAudio/PipeWire), which are what the
settings offer where there is such a server."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from emodesk.audio.devices import AudioDeviceError, DeviceInfo, list_devices, open_portaudio
from emodesk.audio.pulse import ServerDevices, list_server_devices


def format_table(devices: list[DeviceInfo]) -> str:
    header = ("#", "in", "out", "name", "host API", "rate Hz", "low latency ms", "default")
    rows = [header]
    for d in devices:
        latency = [
            f"in {d.default_low_input_latency_s * 1000:.1f}" if d.max_input_channels else "",
            f"out {d.default_low_output_latency_s * 1000:.1f}" if d.max_output_channels else "",
        ]
        default = [
            m for m, on in (("input", d.is_default_input), ("output", d.is_default_output)) if on
        ]
        rows.append(
            (
                str(d.index),
                str(d.max_input_channels),
                str(d.max_output_channels),
                d.name,
                d.host_api,
                f"{d.default_rate:.0f}",
                " / ".join(x for x in latency if x),
                "*" + ",".join(default) if default else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def format_server(server: ServerDevices) -> str:
    """The sound server's devices: name, description, * for the default."""
    lines = []
    for title, devices in (("Sources (microphones)", server.sources), ("Sinks", server.sinks)):
        lines.append(f"{title}:")
        width = max((len(d.name) for d in devices), default=0)
        for d in devices:
            lines.append(f"  {'*' if d.is_default else ' '} {d.name.ljust(width)}  {d.description}")
    return "\n".join(lines)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        pa = open_portaudio()
    except AudioDeviceError as exc:
        print(f"emodesk: {exc}", file=sys.stderr)
        return 1
    try:
        devices = list_devices(pa)
    finally:
        pa.terminate()
    if not devices:
        print(
            "emodesk: no audio devices found; check that a sound card is connected and the "
            "sound server (PulseAudio or PipeWire) is running",
            file=sys.stderr,
        )
        return 1
    print(format_table(devices), file=out)
    server = list_server_devices()
    if server is not None:
        print("\nThe sound server's devices (* the default):", file=out)
        print(format_server(server), file=out)
    return 0
