"""A first launch on a real X server with a window manager (openbox) at the screen sizes
users have: the framed window, status bar included, is on screen."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.x11 import framed_display

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def x_screen(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    with framed_display(*request.param) as env:
        yield env


@pytest.mark.timeout(60)
@pytest.mark.parametrize("x_screen", [(1280, 800), (1024, 640)], indirect=True)
def test_the_first_window_and_its_status_bar_are_on_screen(
    x_screen: dict[str, str], tmp_path: Path
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.first_window_probe", str(tmp_path / "s.ini")],
        env=x_screen, cwd=ROOT, capture_output=True, text=True, timeout=50, check=True,
    ).stdout  # fmt: skip
    values = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in out.splitlines()}
    fx, fy, fw, fh = values["frame"]
    ax, ay, aw, ah = values["area"]
    assert values["framed"] == [1], out  # the window manager really put a frame on it
    assert ax <= fx and fx + fw <= ax + aw, out
    assert ay <= fy and fy + fh <= ay + ah, out
    assert values["status_bottom"][1] < ay + ah, out  # the status bar ends on screen
