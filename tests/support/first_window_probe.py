"""Run under a real X server with a window manager (tests/ui/test_first_launch_x11.py):
the window as a first launch shows it (no stored geometry), then prints its frame and
the screen's available area as `frame x y w h` / `area x y w h` and exits; with a second
argument, it saves a picture of the whole screen there (bench/screenshot_first_launch.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from emodesk.app import build_window
from emodesk.ui.settings_store import SettingsStore


def main(settings_file: str, shot: str | None = None) -> int:
    app = QApplication(sys.argv[:1])
    store = SettingsStore(QSettings(settings_file, QSettings.Format.IniFormat))
    window = build_window(store)
    window.show()
    # The window manager frames the window after the show: give it its moves.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    frame, area = window.frameGeometry(), window.screen().availableGeometry()
    status = window.statusBar()
    bottom = status.mapToGlobal(status.rect().bottomLeft())
    print("frame", frame.x(), frame.y(), frame.width(), frame.height())
    print("area", area.x(), area.y(), area.width(), area.height())
    print("status_bottom", bottom.x(), bottom.y())
    print("framed", int(frame.height() > window.height()))
    if shot:  # the whole screen, the window manager's frame included
        app.primaryScreen().grabWindow(0).save(shot)
    window.ptt_key.detach()
    window.clock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(str(Path(sys.argv[1])), sys.argv[2] if len(sys.argv) > 2 else None))
