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
        self._preview: Any = None

    async def start(self) -> None:
        # Heavy imports happen here, after the first window is on screen.
        from emodesk.conversation.controller import Connection, Controller
        from emodesk.dsp.estimator import AcousticEstimator
        from emodesk.live.credentials import load_api_key
        from emodesk.live.session import LiveSession
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
            reason = (
                "Offline demo (--offline): replies are synthetic." if options.offline
                else "No API key yet: this is the offline demo, with synthetic replies."
            )  # fmt: skip
        self.store = await loop.run_in_executor(None, SessionStore, options.history_path)
        with contextlib.suppress(Exception):
            await loop.run_in_executor(
                None, self.store.apply_retention, settings.retention_days
            )  # fmt: skip
        self.audio = self._make_audio(loop, settings)
        self.controller = Controller(
            live=LiveSession(),
            audio=self.audio,
            store=self.store,
            estimator_factory=AcousticEstimator,
            settings=settings,
            connection=Connection(
                endpoint=endpoint,
                ca_file=ca_file,
                api_key=key or OFFLINE_DEMO_KEY,
                synthetic=self.synthetic,
            ),
            consent=settings.consent_given,
        )
        self.window.services = self.services()
        self.window.attach_controller(
            self.controller,
            getattr(self.audio, "mic_ring", None),
            getattr(self.audio, "reply_ring", None),
        )
        self.window.set_offline_demo(self.synthetic, reason)
        self.window.settings_applied.connect(self._settings_applied)

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
            delete_all_data=self._delete_all,
            list_sessions=self._sessions,
        )

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
        # Voice, profile, consent and hands-free go through the controller's intents;
        # the rest (model, language, devices, buffers) is read at the next connection.
        self.window.statusBar().showMessage(
            "Settings saved. Model, language and audio changes apply from the next start.", 6000
        )

    async def stop(self) -> None:
        async def bounded(coro: Any) -> None:
            try:
                await asyncio.wait_for(coro, SHUTDOWN_TIMEOUT_S)
            except Exception as exc:  # shutting down: log and carry on
                log.warning("shutdown step failed: %s", exc)

        if self.controller is not None:
            self.window.detach_controller()
            await bounded(self.controller.close())
        if self.audio is not None and hasattr(self.audio, "close"):
            await bounded(asyncio.get_running_loop().run_in_executor(None, self.audio.close))
        if self.store is not None:
            await bounded(asyncio.get_running_loop().run_in_executor(None, self.store.close))
        if self.emulator is not None:
            await bounded(self.emulator.stop())


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

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    backend = Backend(
        window,
        BackendOptions(
            endpoint=getattr(args, "endpoint", None),
            ca_file=getattr(args, "ca_file", None),
            offline=bool(getattr(args, "offline", False)),
        ),
    )
    closed = asyncio.Event()
    window.closing.connect(closed.set)

    async def main() -> None:
        await asyncio.sleep(0.05)  # let the first frame paint before the heavy imports
        try:
            await backend.start()
        except Exception as exc:
            log.exception("start-up failed")
            window.banners.show_banner("startup", "error", f"Could not start: {exc}")
        if window.consent_needed():
            window.open_consent_dialog()
        await closed.wait()
        await backend.stop()

    try:
        with loop:
            loop.run_until_complete(main())
    finally:
        reporter.uninstall()
    return 0
