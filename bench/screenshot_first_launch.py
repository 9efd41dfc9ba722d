"""Screenshots of a first launch (no stored window size) on a plain X11 desktop: Xvfb at
1280x800 and 1024x640 with openbox framing the window, the whole screen grabbed, into
docs/screenshots/first-launch-WxH.png. `make screenshot` runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("EMODESK_SCREENSHOT_DIR") or ROOT / "docs/screenshots")
SIZES = ((1280, 800), (1024, 640))


def shoot(width: int, height: int, out: Path) -> str:
    from tests.support.x11 import framed_display

    with framed_display(width, height) as env, tempfile.TemporaryDirectory() as tmp:
        return subprocess.run(
            [sys.executable, "-m", "tests.support.first_window_probe",
             str(Path(tmp) / "s.ini"), str(out)],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        out = OUT / f"first-launch-{width}x{height}.png"
        said = shoot(width, height, out)
        print(f"{out}: {' '.join(said.split())}")


if __name__ == "__main__":
    main()
