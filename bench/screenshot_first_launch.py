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
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{width}x{height}x24",
         "-nolisten", "tcp"],
        pass_fds=(write,), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as pipe:
        display = f":{pipe.readline().strip()}"
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    wm = subprocess.Popen(["openbox"], env=env, stderr=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return subprocess.run(
                [sys.executable, "-m", "tests.support.first_window_probe",
                 str(Path(tmp) / "s.ini"), str(out)],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
            ).stdout  # fmt: skip
    finally:
        for proc in (wm, xvfb):
            proc.terminate()
            proc.wait(10)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        out = OUT / f"first-launch-{width}x{height}.png"
        said = shoot(width, height, out)
        print(f"{out.relative_to(ROOT)}: {' '.join(said.split())}")


if __name__ == "__main__":
    main()
