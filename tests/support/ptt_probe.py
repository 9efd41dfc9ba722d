"""A window with the push-to-talk key on a real X display, for tests/ui/test_ptt_x11.py.

Run as `python -m tests.support.ptt_probe` with DISPLAY set. It prints one line per
thing seen, each with `time.monotonic()`, and flushes:

    gap <ms>                    (the key-up's wait for a repeat's press in force)
    ready <X window id>
    raw press|release auto=0|1 ts=<X time ms> t=<monotonic>   (every Space key event)
    mark t=<monotonic>          (a press of any other key: everything sent before it
                                 has been handled)
    pressed t=<monotonic>       (PushToTalkKey.pressed)
    released t=<monotonic>      (PushToTalkKey.released)
    state <Qt application state>
    done

It quits when a line "quit" (or end of file) comes on standard input, or after
--seconds (a bound, so a test that dies cannot leave it running).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QLabel, QPushButton, QVBoxLayout, QWidget

from emodesk.ui.ptt import PushToTalkKey


def say(text: str) -> None:
    print(text, flush=True)


class RawKeys(QObject):
    """Every Space key event the window gets from the platform, before any filtering
    (installed on the QWindow, which sees each event once)."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            assert isinstance(event, QKeyEvent)
            if event.key() == Qt.Key.Key_Space:
                name = "press" if kind == QEvent.Type.KeyPress else "release"
                say(
                    f"raw {name} auto={int(event.isAutoRepeat())} ts={event.timestamp()} "
                    f"t={time.monotonic():.6f}"
                )
            elif kind == QEvent.Type.KeyPress:
                say(f"mark t={time.monotonic():.6f}")
        return False


class Stdin(QObject):
    quit = Signal()

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            if line.strip() == "quit":
                break
        self.quit.emit()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--repeat-gap-ms",
        type=int,
        default=None,
        help="the key-up wait for a repeat's press (default: what the platform needs)",
    )
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

    app = QApplication([sys.argv[0]])
    window = QWidget()
    window.setWindowTitle("ptt probe")
    layout = QVBoxLayout(window)
    layout.addWidget(QLabel("hold Space"))
    button = QPushButton("a focused button: Space would click it")
    button.clicked.connect(lambda: say(f"clicked t={time.monotonic():.6f}"))
    layout.addWidget(button)
    window.resize(400, 200)

    ptt = PushToTalkKey(window, repeat_gap_ms=args.repeat_gap_ms)
    say(f"gap {ptt.repeat_gap_ms}")
    ptt.pressed.connect(lambda: say(f"pressed t={time.monotonic():.6f}"))
    ptt.released.connect(lambda: say(f"released t={time.monotonic():.6f}"))
    app.applicationStateChanged.connect(lambda s: say(f"state {s.name}"))

    raw = RawKeys()
    window.show()
    handle = window.windowHandle()
    assert handle is not None
    handle.installEventFilter(raw)
    button.setFocus()

    def announce() -> None:
        say(f"ready {int(window.winId())}")

    QTimer.singleShot(0, announce)
    stdin = Stdin()
    stdin.quit.connect(app.quit, Qt.ConnectionType.QueuedConnection)
    stdin.start()
    QTimer.singleShot(int(args.seconds * 1000), app.quit)
    app.exec()
    ptt.detach()
    say("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
