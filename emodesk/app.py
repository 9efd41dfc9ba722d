"""The composition root: the one module that wires every layer into the desktop app.

Start-up order is chosen for the first-window budget (< 1 s): Qt, the window and its
plots are built and shown first; the controller stack (google-genai, the Live session,
PyAudio, sqlite, the emulator) is imported and started only after the window is on
screen, inside the qasync loop.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from emodesk import resources
from emodesk.core.consent import CONSENT_TEXT, CONSENT_TITLE, CONSENT_VERSION
from emodesk.core.profiles import PROFILES
from emodesk.core.settings import (
    FEATURED_VOICES,
    VOICES,
    AppSettings,
    Setting,
    audio_engine_values,
    changes_needed,
    names_of,
)
from emodesk.ui.errors import ErrorReporter, setup_logging
from emodesk.ui.main_window import ConsentInfo, MainWindow, WindowOptions
from emodesk.ui.services import Services
from emodesk.ui.settings_store import APPLICATION, ORGANISATION, SettingsStore, open_qsettings

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 3.0


def window_options() -> WindowOptions:
    return WindowOptions(
        voices=VOICES,
        featured_voices=FEATURED_VOICES,
        profiles=[(key, profile.title) for key, profile in PROFILES.items()],
        consent=ConsentInfo(CONSENT_TITLE, CONSENT_TEXT, CONSENT_VERSION),
    )


@dataclasses.dataclass
class BackendOptions:
    endpoint: str | None = None
    ca_file: str | None = None
    offline: bool = False
    history_path: str | None = None  # None: the platform data dir
    # Make the audio port; None: the real PyAudio engine. Tests pass a fake.
    audio_factory: Callable[[asyncio.AbstractEventLoop, AppSettings], Any] | None = None
    emulator_speed: float = 1.0
    emulator_record: bool = False  # tests: the emulator keeps every client message
    auto_connect: bool = False  # the app connects at start; tests drive the toolbar


class Backend:
    """Everything behind the window: store, audio engine, Live session, controller, and
    the in-process emulator when there is no API key. Built after the window is shown."""

    def __init__(self, window: MainWindow, options: BackendOptions) -> None:
        self.window = window
        self.options = options
        self.controller: Any = None
        self.audio: Any = None
        self.store: Any = None
        self.emulator: Any = None
        self.synthetic = False
        self._connection: Any = None  # conversation.controller.Connection, set by start()
        self._preview: Any = None  # a second audio engine feeding the settings' level meter
        self._preview_lock = asyncio.Lock()
        self._applying: asyncio.Task[None] | None = None  # settings saved in the dialog
        self._switching: asyncio.Task[None] | None = None  # a saved key being applied
        self._newest_key: str | None = None  # of keys saved in a row, only this one is used
        self._retention_days = AppSettings().retention_days  # as last applied
        # Settings waiting to be applied; an apply in progress picks up the newest.
        self._wanted: AppSettings | None = None
        # Held while the controller and audio engine are swapped or the session is cut
        # short (delete all data): one stack is live at a time, and it is closed once.
        self._stack_lock = asyncio.Lock()
        self._key_saved = False  # answered from here: the keyring can block on D-Bus
        self._device_cache: tuple[list[str], list[str]] | None = None
        self._devices_lock = asyncio.Lock()

    async def start(self) -> None:
        # Heavy imports happen here, after the first window is on screen; google-genai
        # (about half a second) on an executor, so the first connect imports nothing.
        from emodesk.live.credentials import install_log_redaction, load_api_key
        from emodesk.live.session import preload_sdk
        from emodesk.store import SessionStore

        loop = asyncio.get_running_loop()
        settings = self.window.settings
        options = self.options
        # Nothing else imports meanwhile: two threads importing pydantic's circular
        # modules at once can fail with "partially initialized module".
        await loop.run_in_executor(None, preload_sdk)
        try:
            key = await loop.run_in_executor(None, load_api_key)  # the keyring: D-Bus
        except Exception as exc:  # an unusable stored key: say so, run the offline demo
            log.warning("the stored API key cannot be used: %s", exc)
            key = None
        self._key_saved = key is not None
        if key is not None:
            install_log_redaction(key)
        self._connection, reason = await self._choose_connection(key)
        self.store = await loop.run_in_executor(None, SessionStore, options.history_path)
        report = self.store.open_report.message
        if report:  # a damaged history was moved aside: the user should know
            log.warning("history: %s", report)
            self.window.banners.show_banner("history", "warning", report, "OK", lambda: None)
        await self._apply_retention(settings.retention_days)
        # The window's settings now, not the copy from before the awaits: the user may
        # have answered the consent dialog meanwhile.
        self._build_stack(self.window.settings)
        self.window.services = self.services()
        self.window.set_offline_demo(self.synthetic, reason)
        self.window.settings_applied.connect(self._settings_applied)
        if options.auto_connect:
            await self.controller.connect()

    async def _apply_retention(self, keep_days: int) -> int:
        """Delete the sessions older than the retention setting (the open one is kept);
        a failure is shown and the app works on with the old sessions still there."""
        self._retention_days = keep_days
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, self.store.apply_retention, keep_days
            )
        except Exception as exc:
            log.warning("retention could not be applied: %s", exc)
            self.window.banners.show_banner(
                "retention", "warning",
                f"Old sessions could not be deleted as the retention setting asks: {exc}",
                "OK", lambda: None,
            )  # fmt: skip
            return 0

    async def _choose_connection(self, key: str | None) -> tuple[Any, str]:
        """The connection (and the banner text, if any): the endpoint asked for with the
        key, or the in-process emulator (the offline demo) when there is no key, when
        --offline is given, or when the endpoint cannot be used (said in a banner). Sets
        `emulator` and `synthetic` to match, once the choice is made."""
        from emodesk.conversation.connection import (
            ConnectionChoiceError,
            ConnectionPlan,
            choose_connection,
        )

        options = self.options
        reason = ""
        if options.offline:
            plan = ConnectionPlan(start_emulator=True)
            reason = "Offline demo (--offline): replies are synthetic."
        else:
            try:
                plan = choose_connection(options.endpoint, options.ca_file, key)
            except ConnectionChoiceError as exc:
                log.warning("cannot use the endpoint: %s", exc)
                plan = ConnectionPlan(start_emulator=True)
                reason = f"Cannot connect as asked ({exc}); this is the offline demo instead."
            else:
                if plan.start_emulator:
                    reason = "No API key yet: this is the offline demo, with synthetic replies."
        if not plan.start_emulator:
            self.emulator, self.synthetic = None, False
            return plan.connection, reason
        from emodesk.conversation.stack import start_emulator

        connection, self.emulator = await start_emulator(
            plan, speed=options.emulator_speed, record=options.emulator_record
        )
        self.synthetic = True
        return connection, reason

    def _build_stack(self, settings: AppSettings) -> None:
        """The audio engine and the controller for `settings`, attached to the window."""
        from emodesk.conversation.stack import build_controller

        self.audio = self._make_audio(asyncio.get_running_loop(), settings)
        self.controller = build_controller(
            audio=self.audio, store=self.store, settings=settings, connection=self._connection
        )
        self.window.attach_controller(
            self.controller, RingView(self.audio, "mic_ring"), RingView(self.audio, "reply_ring")
        )

    def _make_audio(self, loop: asyncio.AbstractEventLoop, settings: AppSettings) -> Any:
        if self.options.audio_factory is not None:
            return self.options.audio_factory(loop, settings)
        from emodesk.audio.engine import AudioEngine
        from emodesk.audio.settings import AudioSettings

        engine = AudioEngine(loop, AudioSettings(**audio_engine_values(settings)))
        engine.start()
        return engine

    def services(self) -> Services:
        return Services(
            has_api_key=lambda: self._key_saved,
            store_api_key=self._store_key,
            test_api_key=self._test_key,
            devices=self._devices,
            level_preview=self._level_preview,
            delete_all_data=self._delete_all,
            list_sessions=self._sessions,
        )

    async def _store_key(self, key: str) -> str:
        """Save the key, then connect with it (in the background); returns what happens."""
        from emodesk.live.credentials import install_log_redaction, store_api_key

        key = key.strip()
        install_log_redaction(key)  # before anything can log it
        await asyncio.get_running_loop().run_in_executor(None, store_api_key, key)
        self._key_saved = True
        if self.options.offline:
            return "Key saved in the system keyring. This run stays offline (--offline)."
        # Not a cancel: a switch cut short would leave the old stack closed and no new one.
        self._newest_key = key
        self._switching = asyncio.ensure_future(self._use_key(key))
        return "Key saved in the system keyring. EmoDesk now uses it."

    async def _use_key(self, key: str) -> None:
        """A key saved while running is used at once: the connection is chosen again (the
        offline demo gives way to the endpoint; a new key replaces a rejected one) and the
        conversation starts anew on it, reconnecting if it was connected."""
        async with self._stack_lock:  # first come, first served: the newest runs last
            if key != self._newest_key:
                return  # a newer key was saved meanwhile
            old_emulator = self.emulator
            self._connection, reason = await self._choose_connection(key)
            # A rejected key left the controller in ERROR: the new one connects anyway.
            await self._rebuild(self.controller.settings, "the API key", after_error=True)
            self.window.set_offline_demo(self.synthetic, reason)
            if old_emulator is not None and old_emulator is not self.emulator:
                await _bounded(old_emulator.stop())

    async def _level_preview(self, device: str | None) -> Any:
        """Open `device` ("" = the default) on a second engine for the settings dialog's
        level meter; None closes it. The conversation's own engine is left alone. Calls
        run one at a time, so a quick change of device never leaves an engine open."""
        async with self._preview_lock:
            if self._preview is not None:
                old, self._preview = self._preview, None
                # Closing joins the engine's thread: up to a second, off the GUI thread.
                await asyncio.get_running_loop().run_in_executor(None, old.close, 1.0)
            if device is None or self.options.audio_factory is not None:
                return None
            from emodesk.audio.engine import AudioEngine
            from emodesk.audio.settings import AudioSettings

            settings = AudioSettings(input_device=device or None)
            engine = AudioEngine(asyncio.get_running_loop(), settings)
            engine.prepare_capture()  # the mic fills mic_ring, which the meter reads
            self._preview = engine
            return RingView(engine, "mic_ring")

    async def _devices(self, refresh: bool) -> tuple[list[str], list[str]]:
        """Input and output device names; PortAudio is asked once (on an executor) and
        again only on `refresh`."""
        async with self._devices_lock:  # a second dialog waits for the first's answer
            if self._device_cache is None or refresh:
                loop = asyncio.get_running_loop()
                self._device_cache = await loop.run_in_executor(None, _list_device_names)
            return self._device_cache

    async def _test_key(self, key: str) -> tuple[bool, str]:
        """Lists models with the key: proves the key without opening a Live session."""
        from emodesk.live.credentials import load_api_key
        from emodesk.live.endpoint import EndpointError, resolve_endpoint

        loop = asyncio.get_running_loop()
        key = key or (await loop.run_in_executor(None, load_api_key) or "")  # D-Bus
        if not key:
            return False, "no key to test"
        if self.options.offline:
            return False, "this run is offline (--offline): keys are not checked"
        try:
            custom = not resolve_endpoint(self.options.endpoint, self.options.ca_file).is_default
        except EndpointError:
            custom = True
        if custom:
            # Only Google's API answers the check; another server judges at connect.
            return False, "a custom endpoint checks the key when connecting: save it"
        # Asked for by the user, so it goes to Google even from the offline demo.

        def check() -> tuple[bool, str]:
            from google import genai

            try:
                client = genai.Client(api_key=key)
                next(iter(client.models.list(config={"page_size": 1})), None)
            except Exception as exc:
                return False, f"the key was not accepted: {type(exc).__name__}"
            return True, "the key works"

        return await loop.run_in_executor(None, check)

    async def _delete_all(self) -> str:
        """End the open session, withdraw consent, delete the history, forget the saved
        consent answer, clear the screen, and reconnect with a fresh session if the user
        was connected (the old session's rows are gone, so it cannot go on)."""
        from emodesk.conversation.api import ConversationState as S

        loop = asyncio.get_running_loop()
        async with self._stack_lock:
            controller = self.controller
            was_connected = controller is not None and controller.state not in (
                S.OFFLINE, S.ERROR
            )  # fmt: skip
            if controller is not None:
                if controller.session_id is not None:
                    await controller.end_session()
                elif was_connected:
                    await controller.disconnect()
                if controller.consent:
                    await controller.set_consent(False)
                await controller.drain()  # queued writes land before the delete
            await loop.run_in_executor(None, self.store.delete_all)
            self.window.forget_consent()
            if was_connected and controller is not None:
                await controller.connect()
        return "All sessions, readings, transcripts and your consent answer were deleted."

    def _sessions(self) -> list[tuple[str, str]]:
        rows = self.store.sessions() if self.store is not None else []
        return [
            # Local time: the user remembers when they talked, not the UTC hour.
            (
                s.session_id,
                f"{s.started_utc.astimezone():%Y-%m-%d %H:%M} · {s.reading_count} readings",
            )
            for s in rows
        ]

    def _settings_applied(self, settings: AppSettings) -> None:
        """Settings saved in the dialog. The window has sent the controller its intents
        (profile, hands-free tuning); the rest is applied here, one apply at a time:
        applies saved during one coalesce into the newest settings."""
        if self.controller is None:
            return
        self._wanted = settings
        if self._applying is None or self._applying.done():
            self._applying = asyncio.ensure_future(self._apply_wanted())

    async def _apply_wanted(self) -> None:
        while self._wanted is not None:
            settings, self._wanted = self._wanted, None
            await self._apply(settings)

    async def _apply(self, settings: AppSettings) -> None:
        """What the change to `settings` needs (`core.settings.Effect`): a shorter history
        now, not at the next start; a new stack for what is fixed when the controller
        and the audio engine are made."""
        in_effect = dataclasses.replace(
            self.controller.settings, retention_days=self._retention_days
        )
        needed = changes_needed(in_effect, settings)
        deleted = await self._apply_retention(settings.retention_days) if needed.retention else 0
        if needed.new_stack:
            await self.rebuild(settings, needed.new_stack)
        elif deleted:
            self.window.statusBar().showMessage(
                f"Settings saved; {deleted} older session(s) deleted as the history setting asks.",
                6000,
            )
        else:
            self.window.statusBar().showMessage("Settings saved.", 4000)

    async def rebuild(self, settings: AppSettings, changed: tuple[Setting[Any], ...]) -> None:
        """Apply settings fixed at construction: end the session, make a new audio engine
        and controller, and reconnect if the old one was connected."""
        async with self._stack_lock:
            await self._rebuild(settings, names_of(changed))

    async def _rebuild(self, settings: AppSettings, names: str, after_error: bool = False) -> None:
        """`names`: what changed, for the status bar; `after_error`: reconnect also from
        ERROR (the change may be what fixes it)."""
        from emodesk.conversation.api import ConversationState as S

        old_controller, old_audio = self.controller, self.audio
        was_connected = old_controller.state is not S.OFFLINE and (
            after_error or old_controller.state is not S.ERROR
        )
        bar = self.window.statusBar()
        bar.showMessage(
            f"Applying {names}: reconnecting with a new session…" if was_connected
            else f"Saved: {names} apply on the next connect.", 8000,
        )  # fmt: skip
        self.window.detach_controller()
        await _bounded(old_controller.close())
        await _bounded(self._close_audio(old_audio))
        # The controller's own copy holds the latest of what it takes as intents.
        self._build_stack(settings.with_intents_of(old_controller.settings))
        if was_connected and await self.controller.connect():
            bar.showMessage(f"Applied {names}: connected with a new session.", 6000)

    async def _close_audio(self, audio: Any) -> None:
        if audio is not None and hasattr(audio, "close"):
            await asyncio.get_running_loop().run_in_executor(None, audio.close)

    async def settled(self) -> None:
        """Wait (bounded) for a settings rebuild or a key switch in progress."""
        for task in (self._applying, self._switching):
            if task is not None and not task.done():
                await _bounded(asyncio.shield(task))

    async def stop(self) -> None:
        """Close everything in order; every step is bounded, so closing never hangs."""
        await self.settled()
        if self.controller is not None:
            self.window.detach_controller()
            await _bounded(self.controller.close())
        if self._preview is not None:
            await _bounded(self._close_audio(self._preview))
            self._preview = None
        await _bounded(self._close_audio(self.audio))
        if self.store is not None:
            if self._retention_days == 0:
                # "Only the current session": it has just ended, so nothing is left behind.
                # (A longer retention was applied at start; a day more of a run is moot.)
                await _bounded(self._apply_retention(0))
            await _bounded(asyncio.get_running_loop().run_in_executor(None, self.store.close))
        if self.emulator is not None:
            await _bounded(self.emulator.stop())


async def _bounded(aw: Any) -> None:
    try:
        await asyncio.wait_for(aw, SHUTDOWN_TIMEOUT_S)
    except Exception as exc:  # shutting down or swapping parts: log and carry on
        log.warning("a close step failed: %s", exc)


class RingView:
    """A ring buffer looked up on each read: the engine may replace its rings (a new
    output rate), and the scope must follow without being re-attached."""

    def __init__(self, owner: Any, name: str) -> None:
        self._owner = owner
        self._name = name

    @property
    def total_written(self) -> int:
        ring = getattr(self._owner, self._name, None)
        return 0 if ring is None else int(ring.total_written)

    def latest(self, n: int) -> Any:
        ring = getattr(self._owner, self._name, None)
        if ring is None:
            import numpy as np

            return np.zeros(n, dtype=np.int16)
        return ring.latest(n)


# Pa_Initialize and Pa_Terminate are not thread-safe: two listings at once crash.
_PORTAUDIO_LISTING = threading.Lock()


def _list_device_names() -> tuple[list[str], list[str]]:
    """(input names, output names) from a PortAudio opened for the purpose; empty lists
    when PortAudio cannot start (no sound system). Runs on an executor."""
    with _PORTAUDIO_LISTING:
        return _read_device_names()


def _read_device_names() -> tuple[list[str], list[str]]:
    try:
        from emodesk.audio.devices import list_devices, open_portaudio

        pa = open_portaudio()
    except Exception as exc:
        log.warning("audio devices cannot be listed: %s", exc)
        return [], []
    try:
        devices = list_devices(pa)
    finally:
        pa.terminate()
    inputs = [d.name for d in devices if d.max_input_channels > 0]
    outputs = [d.name for d in devices if d.max_output_channels > 0]
    return inputs, outputs


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
        window.banners.show_banner("startup", "error", f"Could not start: {exc}")
    await closed.wait()
    await backend.stop()
