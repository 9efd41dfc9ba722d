"""The system programs the tests use. `make test` installs them (packaging/
debian-packages.txt); a run without one fails at the start, loudly, rather than skipping
the tests that need it: a green run always means the real stack ran."""

from __future__ import annotations

import shutil

# The audio stack (PulseAudio with null sinks), speech and sound fixtures, a real X
# server for the window and push-to-talk tests.
REQUIRED = (
    "pulseaudio",
    "pactl",
    "paplay",
    "parec",
    "espeak-ng",
    "flite",
    "sox",
    "Xvfb",
    "xvfb-run",
    "xdotool",
    "xset",
    "openbox",
)


def missing_tools() -> list[str]:
    return [name for name in REQUIRED if shutil.which(name) is None]


def missing_message(missing: list[str]) -> str:
    return (
        f"the tests need these programs and they are missing: {', '.join(missing)}; "
        "`make test` installs them (packaging/debian-packages.txt)"
    )
