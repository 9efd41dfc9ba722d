"""The composition root: the one package that wires every layer into the desktop app.

- this module: start-up (`run`), the window, and the app's main coroutine (`run_window`);
- `backend`: builds the conversation stack behind the window, swaps it when settings or
  the API key change, and closes it (`Backend`);
- `keys`, `devices`, `preview`, `history`: the services the settings dialog calls (the
  API key, the device lists, the input level meter, retention and "delete all data");
- `rings`: the audio engine's ring buffers as the window's scope reads them.

Start-up order is chosen for the first-window budget (< 1 s): Qt, the window and its
plots are built and shown first; the controller stack (google-genai, the Live session,
PyAudio, sqlite, the emulator) is imported and started only after the window is on
screen, inside the qasync loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from emodesk import resources
from emodesk.app.backend import Backend, BackendOptions
from emodesk.app.heap import limit_malloc_arenas
from emodesk.core.consent import CONSENT_TEXT, CONSENT_TITLE, CONSENT_VERSION
from emodesk.core.profiles import PROFILES
from emodesk.core.settings import FEATURED_VOICES, VOICES
from emodesk.ui.errors import ErrorReporter, setup_logging
from emodesk.ui.main_window import ConsentInfo, MainWindow, WindowOptions
from emodesk.ui.settings_store import APPLICATION, ORGANISATION, SettingsStore, open_qsettings

__all__ = [
    "Backend",
    "BackendOptions",
    "build_window",
    "install_error_reporting",
    "make_app_folders_private",
    "no_display_reason",
    "run",
    "run_window",
    "window_options",
]

log = logging.getLogger(__name__)


def window_options() -> WindowOptions:
    return WindowOptions(
        voices=VOICES,
        featured_voices=FEATURED_VOICES,
        profiles=[(key, profile.title) for key, profile in PROFILES.items()],
        consent=ConsentInfo(CONSENT_TITLE, CONSENT_TEXT, CONSENT_VERSION),
    )


def build_window(store: SettingsStore) -> MainWindow:
    settings, rejected = store.load()
    if rejected:
        log.warning("settings reset to defaults: %s", ", ".join(rejected))
    return MainWindow(window_options(), store, settings)


def install_error_reporting(
    window: MainWindow, loop: asyncio.AbstractEventLoop, log_path: Path | None
) -> ErrorReporter:
    """Route uncaught errors to the log and a dialog over `window`: those raised in Qt
    slots (PySide6 hands them to `sys.excepthook`) and those in asyncio callbacks and
    tasks on `loop`. Undo with `reporter.uninstall()`."""
    reporter = ErrorReporter(log_path, lambda: window)
    reporter.install()
    loop.set_exception_handler(reporter.loop_exception)
    return reporter


def make_app_folders_private(log_path: Path | None, settings_path: Path | None) -> None:
    """Take away what an older version left readable by others in the app's own folders:
    the log folder and the settings folder (the store does the data folder when it opens
    the default history). Only folders that carry the app's name, never their parents."""
    from emodesk.core.privacy import make_private

    folders = []
    if log_path is not None:
        log_folder = log_path.parent  # Linux: ~/.local/state/emodesk/log
        app_named = log_folder.parent.name.lower() == "emodesk"
        folders.append(log_folder.parent if app_named else log_folder)
    if settings_path is not None and settings_path.parent.name == ORGANISATION:
        folders.append(settings_path.parent)  # ~/.config/EmoDesk
    changed = make_private(folders)
    if changed:
        log.info("made private (owner only): %s", ", ".join(str(path) for path in changed))


def no_display_reason(env: Mapping[str, str]) -> str:
    """Why Qt would abort for want of a screen (over SSH, in a container), or ""."""
    if sys.platform != "linux" or env.get("QT_QPA_PLATFORM"):
        return ""
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return ""
    return (
        "no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset). Run it "
        "in a desktop session, or use `emodesk converse` (files or the sound card, no "
        "window) or `emodesk analyze`."
    )


def run(args: argparse.Namespace) -> int:
    reason = no_display_reason(os.environ)
    if reason:
        print(f"emodesk: {reason}", file=sys.stderr)
        return 2
    limit_malloc_arenas()  # before Qt, PortAudio or an executor starts a thread
    import qasync

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("EmoDesk")
    app.setDesktopFileName(resources.APP_ID)  # the .desktop file's name: the desktop's icon
    app.setWindowIcon(QIcon(str(resources.icon_path())))
    log_path: Path | None
    try:
        log_path = setup_logging()
    except OSError:
        log_path = None
    settings_file = os.environ.get("EMODESK_SETTINGS_FILE") or None
    store = SettingsStore(open_qsettings(settings_file))
    make_app_folders_private(log_path, None if settings_file else Path(store.path))
    window = build_window(store)
    window.show()
    if os.environ.get("EMODESK_EXIT_AFTER_SHOW"):  # bench: time to the first window only
        QTimer.singleShot(0, app.quit)
        app.exec()
        print("first-window-shown", flush=True)
        return 0

    # The app ends when `main()` has shut the backend down, not when the window goes.
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    reporter = install_error_reporting(window, loop, log_path)
    backend = Backend(
        window,
        BackendOptions(
            endpoint=getattr(args, "endpoint", None),
            ca_file=getattr(args, "ca_file", None),
            offline=bool(getattr(args, "offline", False)),
            token_url=getattr(args, "token_url", None)
            or os.environ.get("EMODESK_TOKEN_URL", "").strip()
            or None,
            auto_connect=True,
        ),
    )
    # Ctrl+C or a TERM from the desktop session closes the window, so the same bounded
    # shutdown runs as for the close button.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: QTimer.singleShot(0, window.close))
    try:
        with loop:
            loop.run_until_complete(run_window(window, backend))
    finally:
        reporter.uninstall()
    return 0


async def run_window(window: MainWindow, backend: Backend) -> None:
    """Start the backend behind a shown window, wait for the window to close, then shut
    the backend down (bounded)."""
    closed = asyncio.Event()
    window.closing.connect(closed.set)
    await asyncio.sleep(0.05)  # let the first frame paint before the heavy imports
    if window.consent_needed():
        window.open_consent_dialog()
    try:
        await backend.start()
    except Exception as exc:
        log.exception("start-up failed")
        window.show_banner("startup", "error", f"Could not start: {exc}")
    await closed.wait()
    await backend.stop()
