"""The composition root: the one module that wires every layer into the desktop app.

Start-up order is chosen for the first-window budget (< 1 s): Qt, the window and its
plots are built and shown first; the controller stack (google-genai, the Live session,
PyAudio, sqlite, the emulator) is imported and started only after the window is on
screen, inside the qasync loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from emodesk.core.consent import CONSENT_TEXT, CONSENT_TITLE, CONSENT_VERSION
from emodesk.core.profiles import PROFILES
from emodesk.core.settings import FEATURED_VOICES, VOICES, AppSettings
from emodesk.ui.errors import ErrorReporter, setup_logging
from emodesk.ui.main_window import ConsentInfo, MainWindow, WindowOptions
from emodesk.ui.services import Services
from emodesk.ui.settings_store import APPLICATION, ORGANISATION, SettingsStore, open_qsettings

log = logging.getLogger(__name__)

OFFLINE_DEMO_KEY = "offline-demo"  # the emulator takes any non-empty key
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
        self._connection_args: dict[str, Any] = {}
        self._preview: Any = None  # a second audio engine feeding the settings' level meter
        self._rebuilding: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Heavy imports happen here, after the first window is on screen.
        from emodesk.live.credentials import load_api_key
        from emodesk.store import SessionStore

        loop = asyncio.get_running_loop()
        settings = self.window.settings
        options = self.options
        key = load_api_key()
        endpoint, ca_file = options.endpoint, options.ca_file
        reason = ""
        if options.offline or (key is None and endpoint is None and not _env_endpoint()):
            from emodesk.live.emulator.server import EmulatorServer

            self.emulator = EmulatorServer(speed=options.emulator_speed)
            await self.emulator.start()
            endpoint, ca_file = self.emulator.url, self.emulator.ca_file
            self.synthetic = True
            key = None  # a real key never goes to the emulator
            reason = (
                "Offline demo (--offline): replies are synthetic." if options.offline
                else "No API key yet: this is the offline demo, with synthetic replies."
            )  # fmt: skip
        self._connection_args = {
            "endpoint": endpoint,
            "ca_file": ca_file,
            "api_key": key or OFFLINE_DEMO_KEY,
            "synthetic": self.synthetic,
        }
        self.store = await loop.run_in_executor(None, SessionStore, options.history_path)
        with contextlib.suppress(Exception):
            await loop.run_in_executor(
                None, self.store.apply_retention, settings.retention_days
            )  # fmt: skip
        self._build_stack(settings)
        self.window.services = self.services()
        self.window.set_offline_demo(self.synthetic, reason)
        self.window.settings_applied.connect(self._settings_applied)
        if options.auto_connect:
            await self.controller.connect()

    def _build_stack(self, settings: AppSettings) -> None:
        """The audio engine and the controller for `settings`, attached to the window."""
        from emodesk.conversation.controller import Connection, Controller
        from emodesk.dsp.estimator import AcousticEstimator
        from emodesk.live.session import LiveSession

        self.audio = self._make_audio(asyncio.get_running_loop(), settings)
        self.controller = Controller(
            live=LiveSession(),
            audio=self.audio,
            store=self.store,
            estimator_factory=AcousticEstimator,
            settings=settings,
            connection=Connection(**self._connection_args),
            consent=settings.consent_given,
        )
        self.window.attach_controller(
            self.controller, RingView(self.audio, "mic_ring"), RingView(self.audio, "reply_ring")
        )

    def _make_audio(self, loop: asyncio.AbstractEventLoop, settings: AppSettings) -> Any:
        if self.options.audio_factory is not None:
            return self.options.audio_factory(loop, settings)
        from emodesk.audio.engine import AudioEngine
        from emodesk.audio.settings import AudioSettings

        engine = AudioEngine(
            loop,
            AudioSettings(
                input_device=settings.input_device or None,
                output_device=settings.output_device or None,
                playout_buffer_ms=settings.playout_buffer_ms,
                echo_mode=settings.echo_mode,  # type: ignore[arg-type]
            ),
        )
        engine.start()
        return engine

    def services(self) -> Services:
        from emodesk.live import credentials

        def has_key() -> bool:
            return credentials.load_api_key() is not None

        return Services(
            has_api_key=has_key,
            store_api_key=credentials.store_api_key,
            test_api_key=self._test_key,
            input_devices=lambda: self._device_names("input"),
            output_devices=lambda: self._device_names("output"),
            level_preview=self._level_preview,
            delete_all_data=self._delete_all,
            list_sessions=self._sessions,
        )

    def _level_preview(self, device: str | None) -> Any:
        """Open `device` ("" = the default) on a second engine for the settings dialog's
        level meter; None closes it. The conversation's own engine is left alone."""
        if self._preview is not None:
            self._preview.close(timeout_s=1.0)
            self._preview = None
        if device is None or self.options.audio_factory is not None:
            return None
        from emodesk.audio.engine import AudioEngine
        from emodesk.audio.settings import AudioSettings

        engine = AudioEngine(asyncio.get_running_loop(), AudioSettings(input_device=device or None))
        engine.start_capture(lambda _frame: None)  # frames unused: the meter reads the ring
        self._preview = engine
        return RingView(engine, "mic_ring")

    @staticmethod
    def _device_names(direction: str) -> list[str]:
        try:
            from emodesk.audio.devices import list_devices, open_portaudio

            pa = open_portaudio()
        except Exception:
            return []
        try:
            attr = "max_input_channels" if direction == "input" else "max_output_channels"
            return [d.name for d in list_devices(pa) if getattr(d, attr) > 0]
        finally:
            pa.terminate()

    async def _test_key(self, key: str) -> tuple[bool, str]:
        """Lists models with the key: proves the key without opening a Live session."""
        from emodesk.live.credentials import load_api_key

        key = key or (load_api_key() or "")
        if not key:
            return False, "no key to test"
        if self.synthetic and self.options.endpoint is None:
            return False, "the offline demo cannot check keys; restart with the key saved"

        def check() -> tuple[bool, str]:
            from google import genai

            try:
                client = genai.Client(api_key=key)
                next(iter(client.models.list(config={"page_size": 1})), None)
            except Exception as exc:
                return False, f"the key was not accepted: {type(exc).__name__}"
            return True, "the key works"

        return await asyncio.get_running_loop().run_in_executor(None, check)

    async def _delete_all(self) -> str:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.store.delete_all)
        return "All sessions, readings and transcripts were deleted."

    def _sessions(self) -> list[tuple[str, str]]:
        rows = self.store.sessions() if self.store is not None else []
        return [
            (s.session_id, f"{s.started_utc:%Y-%m-%d %H:%M} · {s.reading_count} readings")
            for s in rows
        ]

    def _settings_applied(self, settings: AppSettings) -> None:
        # Voice, profile, consent and hands-free go through the controller's intents (the
        # window sends them). Model, language and audio devices are fixed when the
        # controller and the engine are made, so a change there starts a new stack.
        if self.controller is None:
            return
        current = self.controller.settings
        changed = [
            name for name in RESTART_FIELDS if getattr(settings, name) != getattr(current, name)
        ]
        if not changed:
            self.window.statusBar().showMessage("Settings saved.", 4000)
            return
        self._rebuilding = asyncio.ensure_future(self.rebuild(settings, changed))

    async def rebuild(self, settings: AppSettings, changed: list[str]) -> None:
        """Apply settings fixed at construction: end the session, make a new audio engine
        and controller, and reconnect if the old one was connected."""
        from emodesk.conversation.api import ConversationState as S

        old_controller, old_audio = self.controller, self.audio
        was_connected = old_controller.state not in (S.OFFLINE, S.ERROR)
        names = ", ".join(RESTART_LABELS[name] for name in changed)
        bar = self.window.statusBar()
        bar.showMessage(
            f"Applying {names}: reconnecting with a new session…" if was_connected
            else f"Saved: {names} apply on the next connect.", 8000,
        )  # fmt: skip
        self.window.detach_controller()
        await _bounded(old_controller.close())
        await _bounded(self._close_audio(old_audio))
        # The controller's own copy holds the latest voice, profile, consent, hands-free.
        fixed = old_controller.settings
        settings = dataclasses.replace(
            settings, voice=fixed.voice, profile=fixed.profile,
            consent=fixed.consent, hands_free=fixed.hands_free,
        )  # fmt: skip
        self._build_stack(settings)
        if was_connected and await self.controller.connect():
            bar.showMessage(f"Applied {names}: connected with a new session.", 6000)

    async def _close_audio(self, audio: Any) -> None:
        if audio is not None and hasattr(audio, "close"):
            await asyncio.get_running_loop().run_in_executor(None, audio.close)

    async def stop(self) -> None:
        """Close everything in order; every step is bounded, so closing never hangs."""
        if self._rebuilding is not None and not self._rebuilding.done():
            await _bounded(asyncio.shield(self._rebuilding))
        if self.controller is not None:
            self.window.detach_controller()
            await _bounded(self.controller.close())
        if self._preview is not None:
            await _bounded(self._close_audio(self._preview))
            self._preview = None
        await _bounded(self._close_audio(self.audio))
        if self.store is not None:
            await _bounded(asyncio.get_running_loop().run_in_executor(None, self.store.close))
        if self.emulator is not None:
            await _bounded(self.emulator.stop())


RESTART_LABELS = {
    "model": "the model",
    "language": "the language",
    "input_device": "the microphone",
    "output_device": "the speaker",
    "playout_buffer_ms": "the playout buffer",
    "echo_mode": "the echo mode",
    "vad_sensitivity": "the hands-free sensitivity",
}
RESTART_FIELDS = tuple(RESTART_LABELS)


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


def _env_endpoint() -> bool:
    return bool(os.environ.get("EMODESK_ENDPOINT", "").strip())


def build_window(store: SettingsStore) -> MainWindow:
    settings, rejected = store.load()
    if rejected:
        log.warning("settings reset to defaults: %s", ", ".join(rejected))
    return MainWindow(window_options(), store, settings)


def run(args: argparse.Namespace) -> int:
    import qasync

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("EmoDesk")
    log_path: Path | None
    try:
        log_path = setup_logging()
    except OSError:
        log_path = None
    store = SettingsStore(open_qsettings(os.environ.get("EMODESK_SETTINGS_FILE") or None))
    window = build_window(store)
    reporter = ErrorReporter(log_path, lambda: window)
    reporter.install()
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
    loop.set_exception_handler(reporter.loop_exception)
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
