"""The desktop app's own files are its owner's only: `emodesk` as a user starts it (the
window shown offscreen, then closed at once) writes its log and settings 0600 in 0700
folders, and tightens what an older version left group- or world-readable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start_the_app(home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "EMODESK_EXIT_AFTER_SHOW": "1",
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_DATA_HOME": str(home / "data"),
    }
    env.pop("EMODESK_SETTINGS_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "emodesk"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        # the usual default umask, which made everything world-readable before
        preexec_fn=lambda: os.umask(0o022),
    )


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG folders are Linux's")
def test_a_first_start_writes_the_log_and_settings_privately(tmp_path: Path) -> None:
    done = start_the_app(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    settings = tmp_path / "config" / "EmoDesk" / "EmoDesk.ini"
    log = tmp_path / "state" / "emodesk" / "log" / "emodesk.log"
    assert settings.exists() and log.exists()
    assert mode(settings) == 0o600 and mode(log) == 0o600
    for folder in (settings.parent, log.parent, log.parent.parent):
        assert mode(folder) == 0o700, folder


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG folders are Linux's")
def test_open_files_of_an_older_version_are_tightened_at_start_and_logged(
    tmp_path: Path,
) -> None:
    settings = tmp_path / "config" / "EmoDesk" / "EmoDesk.ini"
    log = tmp_path / "state" / "emodesk" / "log" / "emodesk.log"
    rotated = log.with_name("emodesk.log.1")
    for path in (settings, log, rotated):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        path.chmod(0o644)
    for folder in (settings.parent, log.parent, log.parent.parent):
        folder.chmod(0o755)
    neighbour = tmp_path / "config" / "other-app.conf"  # beside the app's folder: not ours
    neighbour.write_text("")
    neighbour.chmod(0o644)
    (tmp_path / "config").chmod(0o755)

    done = start_the_app(tmp_path)

    assert done.returncode == 0, done.stderr[-2000:]
    for path in (settings, log, rotated):
        assert mode(path) == 0o600, path
    for folder in (settings.parent, log.parent, log.parent.parent):
        assert mode(folder) == 0o700, folder
    assert mode(neighbour) == 0o644
    assert mode(tmp_path / "config") == 0o755
    (line,) = [x for x in log.read_text().splitlines() if "made private (owner only)" in x]
    for path in (settings, settings.parent, log, rotated, log.parent):
        assert str(path) in line
