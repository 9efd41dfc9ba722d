"""The Debian package as a user gets it: the .deb of `make dist` (built by packaging/dist.py,
or reused from .cache/dist/ when none of its inputs changed) unpacked into a throwaway root
with `dpkg -x`, and the frozen app run from there with a desktop session's environment:
outside the repository and its venv, neither on any path the app sees.

A cold cache freezes the dependencies with PyInstaller (minutes on two cores); a change to
EmoDesk's own files only re-assembles the package (tens of seconds).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emodesk import __version__
from emodesk.resources import APP_ID

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))
import dist  # noqa: E402

pytestmark = pytest.mark.timeout(1800)  # the first test waits for a cold build


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the tests' network guard is not part of the build
    return env


@pytest.fixture(scope="module")
def deb() -> Path:
    out = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "dist.py"), "--deb-path"],
        capture_output=True,
        text=True,
        env=_build_env(),
        timeout=1800,
    )
    assert out.returncode == 0, (
        f"packaging/dist.py failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
    )
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".deb"
    return path


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="emodesk-deb-root-") as tmp:
        subprocess.run(["dpkg", "-x", str(deb), tmp], check=True)
        yield Path(tmp)


def _field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_package_installs_a_desktop_app(deb: Path, installed: Path) -> None:
    assert _field(deb, "Package") == "emodesk"
    assert _field(deb, "Version") == f"{__version__}-1"
    depends = {alt.strip().split()[0] for alt in _field(deb, "Depends").split(",")}
    # glibc and the X/GL stack are the system's; ALSA's PulseAudio plugin is loaded at run time
    assert {"libc6", "libxcb1", "libasound2-plugins", "libpulse0"} <= depends

    app = installed / "opt" / "emodesk" / "emodesk"
    assert app.is_file() and os.access(app, os.X_OK)
    link = installed / "usr" / "bin" / "emodesk"
    assert link.is_symlink() and os.readlink(link) == "/opt/emodesk/emodesk"
    share = installed / "usr" / "share"
    assert (share / "applications" / f"{APP_ID}.desktop").is_file()
    assert (share / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    hicolor = share / "icons" / "hicolor"
    assert (hicolor / "scalable" / "apps" / f"{APP_ID}.svg").is_file()
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        png = hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert int.from_bytes(png.read_bytes()[16:20], "big") == size  # IHDR width
    # the sources are in the app, compiled; the icon inside the package too
    internal = app.parent / "_internal"
    assert (internal / "emodesk" / "resources" / "emodesk.svg").is_file()
    assert list((internal / "emodesk" / "__pycache__").glob("cli.cpython-*.pyc"))


def test_the_wheel_carries_the_icon(deb: Path) -> None:
    import json
    import zipfile

    info = json.loads((deb.parent / "build.json").read_text())
    wheel = next(deb.parent / name for name in info["python"] if name.endswith(".whl"))
    assert "emodesk/resources/emodesk.svg" in zipfile.ZipFile(wheel).namelist()
    assert any(name.endswith(".tar.gz") for name in info["python"])


def _run(executable: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dist.clean_env(home, display="")
    del env["DISPLAY"]
    return subprocess.run(
        [str(executable), *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_frozen_command_line_runs_from_the_package(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    app = installed / "opt" / "emodesk" / "emodesk"
    # started through a link, as /usr/bin/emodesk is: the app finds its folder all the same
    link = home / "bin" / "emodesk"
    link.parent.mkdir()
    link.symlink_to(app)
    version = _run(link, home, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"emodesk {__version__}"

    wav = home / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(wav), "Please tell me when the next train to the city leaves."],
        check=True,
    )
    csv = home / "readings.csv"
    analyzed = _run(app, home, "analyze", str(wav), "--csv", str(csv))
    assert analyzed.returncode == 0, analyzed.stderr
    assert any(
        label in analyzed.stdout for label in ("neutral", "happy", "sad", "angry", "anxious")
    )
    header, *rows = csv.read_text().splitlines()
    assert header.startswith("session_id,turn,source,") and rows
    assert all(",acoustic," in row for row in rows)


def _windows(display: str) -> str:
    return subprocess.run(
        ["xwininfo", "-display", display, "-root", "-children"],
        capture_output=True,
        text=True,
    ).stdout


def _main_window(display: str) -> str | None:
    for line in _windows(display).splitlines():
        if '"EmoDesk": ("emodesk" "EmoDesk")' in line:
            return line.split()[0]
    return None


def test_the_frozen_app_opens_its_window(
    installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shot = ROOT / ".cache" / "dist" / "frozen-window.png"
    with dist.xvfb() as display:
        app = subprocess.Popen(
            [str(installed / "opt" / "emodesk" / "emodesk")],
            env=dist.clean_env(home, display),
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while (window := _main_window(display)) is None:
                assert app.poll() is None, f"the app ended: {app.communicate()[0][-2000:]}"
                assert time.monotonic() < deadline, "no window after 60 s"
                time.sleep(0.2)
            time.sleep(2)  # the backend starts behind the shown window; let it paint
            assert app.poll() is None
            icon = subprocess.run(
                ["xprop", "-display", display, "-id", window, "_NET_WM_ICON"],
                capture_output=True,
                text=True,
            ).stdout
            assert "Icon (64 x 64)" in icon, icon[:200]
            # everything the process mapped comes from the package or the system
            maps = Path(f"/proc/{app.pid}/maps").read_text()
            mapped = {line.split(None, 5)[5] for line in maps.splitlines() if "/" in line}
            venv_prefix = os.path.realpath(sys.prefix)
            base_prefix = os.path.realpath(sys.base_prefix)
            for path in mapped:
                assert not path.startswith((str(ROOT), venv_prefix, base_prefix)), path
            assert any(path.startswith(str(installed)) for path in mapped)
            shot.parent.mkdir(parents=True, exist_ok=True)
            grab = (
                "import sys\n"
                "from PySide6.QtGui import QGuiApplication\n"
                "app = QGuiApplication(['grab'])\n"
                "assert app.primaryScreen().grabWindow(0).save(sys.argv[1])\n"
            )
            env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
            subprocess.run([sys.executable, "-c", grab, str(shot)], env=env, check=True)
            with capsys.disabled():
                print(f"\nthe frozen app's window (from the .deb, under Xvfb): {shot}")
        finally:
            app.send_signal(signal.SIGTERM)  # closes the window: the app's own shutdown
            try:
                code = app.wait(20)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()
                code = None
        assert code == 0, f"the app did not close cleanly ({code})"
