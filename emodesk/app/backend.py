"""Everything behind the window, composed and kept alive: the session history, the audio
engine, the conversation stack (`conversation.stack`), and the in-process emulator when
there is no API key. The services the settings dialog calls (`keys`, `devices`,
`preview`, `history`) are modules of their own; the backend wires them to the window.

Heavy imports (google-genai, PyAudio, sqlite, the emulator) happen in `start()`, after
the first window is on screen."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QTimer

from emodesk.app.devices import DeviceNames
from emodesk.app.heap import freeze_startup_objects
from emodesk.app.history import History
from emodesk.app.keys import ApiKeys
from emodesk.app.preview import LevelPreview
from emodesk.app.rings import RingView
from emodesk.core.settings import (
    AppSettings,
    Setting,
    audio_engine_values,
    changes_needed,
    names_of,
)
from emodesk.ui.main_window import MainWindow
from emodesk.ui.services import Services

if TYPE_CHECKING:
    from emodesk.conversation.controller import Connection, Controller
    from emodesk.conversation.ports import AudioPort
    from emodesk.conversation.tools.folders import FolderTools
    from emodesk.live.emulator.server import EmulatorServer
    from emodesk.store import SessionStore

    class DesktopAudio(AudioPort, Protocol):
        """The audio port a stack is built on; closed when the stack goes."""

        def close(self) -> None: ...


log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 3.0
AUDIO_GAPS_POLL_MS = 2000


@dataclasses.dataclass
class BackendOptions:
    endpoint: str | None = None
    ca_file: str | None = None
    offline: bool = False
    # The organisation's token service (--token-url / EMODESK_TOKEN_URL; else the
    # token_url setting): no key is read.
    token_url: str | None = None
    history_path: str | None = None  # None: the platform data dir
    # Make the audio port; None: the real PyAudio engine. Tests pass a fake.
    audio_factory: Callable[[asyncio.AbstractEventLoop, AppSettings], DesktopAudio] | None = None
    emulator_speed: float = 1.0
    emulator_record: bool = False  # tests: the emulator keeps every client message
    auto_connect: bool = False  # the app connects at start; tests drive the toolbar


class Backend:
    """Builds the stack after the window is shown (`start`), swaps it when settings or
    the API key change, and closes everything in order (`stop`)."""

    def __init__(self, window: MainWindow, options: BackendOptions) -> None:
        self.window = window
        self.options = options
        self.controller: Controller | None = None
        self.audio: DesktopAudio | None = None
        self.store: SessionStore | None = None
        self.history: History | None = None
        self.emulator: EmulatorServer | None = None
        self.folders: FolderTools | None = None  # the knowledge and course folders' tools
        self.synthetic = False
        self.keys = ApiKeys(
            use_key=self.use_key,
            endpoint=options.endpoint,
            ca_file=options.ca_file,
            offline=options.offline,
            token_url=options.token_url,
        )
        self.devices = DeviceNames()
        self.preview = LevelPreview(enabled=options.audio_factory is None)
        self._connection: Connection | None = None
        self._applying: asyncio.Task[None] | None = None  # settings saved in the dialog
        # Settings waiting to be applied; an apply in progress picks up the newest.
        self._wanted: AppSettings | None = None
        # Held while the controller and audio engine are swapped or the session is cut
        # short (delete all data): one stack is live at a time, and it is closed once.
        self._stack_lock = asyncio.Lock()
        # The status bar's count of audio gaps (the engine's underruns and ALSA's),
        # read every AUDIO_GAPS_POLL_MS: counters, not events, so a slow timer is enough.
        self._gaps_timer = QTimer()
        self._gaps_timer.setInterval(AUDIO_GAPS_POLL_MS)
        self._gaps_timer.timeout.connect(self._show_audio_gaps)

    # ---------------------------------------------------------------- start

    async def start(self) -> None:
        # Heavy imports happen here, after the first window is on screen; google-genai
        # (about half a second) on an executor, so the first connect imports nothing.
        from emodesk.live.session import preload_sdk
        from emodesk.store import SessionStore

        loop = asyncio.get_running_loop()
        # Nothing else imports meanwhile: two threads importing pydantic's circular
        # modules at once can fail with "partially initialized module".
        await loop.run_in_executor(None, preload_sdk)
        # With a token service the API key stays on it: none is read on this machine.
        self.keys.token_url = self._token_url(self.window.settings)
        key = None if self.keys.token_url else await self.keys.load()  # keyring: D-Bus
        self._connection, reason = await self._choose_connection(key)
        store = await loop.run_in_executor(None, SessionStore, self.options.history_path)
        self.store = store
        if store.open_report.message:  # a damaged history was moved aside: say so
            log.warning("history: %s", store.open_report.message)
            self.window.show_banner("history", "warning", store.open_report.message, "OK")
        self.history = History(store, self._retention_failed)
        self.history.apply_redaction(self.window.settings)
        await self.history.apply_retention(self.window.settings.retention_days)
        # What lives as long as the app (modules, the window, the store) is now built;
        # the stack is not frozen with it: it is rebuilt on a settings change, and a
        # frozen object left in a reference cycle is never collected.
        frozen = freeze_startup_objects()
        log.debug("%d start-up objects out of the collector's sight", frozen)
        # The window's settings now, not a copy from before the awaits: the user may
        # have answered the consent dialog meanwhile.
        controller = self._build_stack(self.window.settings)
        self.window.services = self.services(self.history)
        self.window.set_offline_demo(self.synthetic, reason)
        self.window.settings_applied.connect(self._settings_applied)
        self._gaps_timer.start()
        if self.options.auto_connect:
            await controller.connect()

    def _show_audio_gaps(self) -> None:
        from emodesk.audio.alsa_log import alsa_underruns

        counters = getattr(self.audio, "counters", None)  # the engine's; a fake has none
        underruns = int(getattr(counters, "underruns", 0))
        self.window.show_audio_gaps(underruns + alsa_underruns())

    def services(self, history: History) -> Services:
        """What the window's dialogs call."""
        return Services(
            has_api_key=self.keys.has_key,
            store_api_key=self.keys.store,
            keyring_problem=self.keys.keyring_problem,
            use_api_key_for_session=self.keys.use_for_session,
            test_api_key=self.keys.test,
            devices=self.devices.names,
            level_preview=self.preview.open,
            delete_all_data=self._delete_all,
            list_sessions=history.sessions,
            history=history.store,
        )

    def _token_url(self, settings: AppSettings) -> str | None:
        """The token service in effect: the command line's, else the setting's."""
        return self.options.token_url or settings.token_url or None

    def _retention_failed(self, message: str) -> None:
        self.window.show_banner("retention", "warning", message, "OK")

    async def _choose_connection(self, key: str | None) -> tuple[Connection, str]:
        """The connection (and the banner text, if any): the endpoint asked for with the
        key, or the in-process emulator (the offline demo) when there is no key, when
        --offline is given, or when the endpoint cannot be used (said in a banner). Sets
        `emulator` and `synthetic` to match, once the choice is made."""
        from emodesk.conversation.connection import (
            ConnectionChoiceError,
            ConnectionPlan,
            choose_connection,
        )
        from emodesk.conversation.stack import start_emulator

        options = self.options
        reason = ""
        if options.offline:
            plan = ConnectionPlan(start_emulator=True)
            reason = "Offline demo (--offline): replies are synthetic."
        else:
            try:
                if self.keys.token_url:  # every session gets a token from the service
                    plan = choose_connection(
                        options.endpoint, options.ca_file, None, token_url=self.keys.token_url
                    )
                else:
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
        connection, self.emulator = await start_emulator(
            plan, speed=options.emulator_speed, record=options.emulator_record
        )
        self.synthetic = True
        return connection, reason

    # ---------------------------------------------------------------- the stack

    def _build_stack(self, settings: AppSettings) -> Controller:
        """The audio engine and the controller for `settings`, attached to the window."""
        from emodesk.conversation.stack import build_controller

        assert self.store is not None and self._connection is not None, "start() first"
        audio = self._make_audio(asyncio.get_running_loop(), settings)
        controller = build_controller(
            audio=audio,
            store=self.store,
            settings=settings,
            connection=self._connection,
            tools=self._folder_tools(settings),
            own_thread=True,  # the socket is read off the GUI thread
        )
        self.audio, self.controller = audio, controller
        self.window.attach_controller(
            controller, RingView(audio, "mic_ring"), RingView(audio, "reply_ring")
        )
        return controller

    def _folder_tools(self, settings: AppSettings) -> dict[str, Any]:
        """The tools of the knowledge and course folders in `settings` (indexed in the
        background; the first search waits for it); a folder that cannot be used is
        said in the status bar and left out. The previous stack's are closed."""
        from emodesk.conversation.tools.folders import KnowledgeError, build_folder_tools

        old, self.folders = self.folders, None
        if old is not None:  # may wait for an indexing under way: not on the loop
            asyncio.get_running_loop().run_in_executor(None, old.close)
        if not settings.knowledge_dir and not settings.course_dir:
            return {}
        try:
            self.folders = build_folder_tools(
                settings.knowledge_dir or None, settings.course_dir or None, index_now=False
            )
        except (KnowledgeError, OSError) as exc:
            log.warning("a knowledge or course folder cannot be used: %s", exc)
            self.window.show_status(f"Folder not used: {exc}", 10000)
            return {}
        return dict(self.folders.tools)

    def _make_audio(self, loop: asyncio.AbstractEventLoop, settings: AppSettings) -> DesktopAudio:
        if self.options.audio_factory is not None:
            return self.options.audio_factory(loop, settings)
        from emodesk.audio.engine import AudioEngine
        from emodesk.audio.settings import AudioSettings

        engine = AudioEngine(loop, AudioSettings(**audio_engine_values(settings)))
        engine.start()
        return engine

    async def _swap_stack(
        self, settings: AppSettings, names: str, after_error: bool = False
    ) -> None:
        """End the session, close the stack, build one for `settings`, and reconnect if
        the old one was connected. `names`: what changed, for the status bar;
        `after_error`: reconnect also from ERROR (the change may be what fixes it).
        The caller holds the stack lock."""
        from emodesk.conversation.api import ConversationState as S

        old_controller, old_audio = self.controller, self.audio
        assert old_controller is not None, "start() first"
        was_connected = old_controller.state is not S.OFFLINE and (
            after_error or old_controller.state is not S.ERROR
        )
        self.window.show_status(
            f"Applying {names}: reconnecting with a new session…" if was_connected
            else f"Saved: {names} apply on the next connect.", 8000,
        )  # fmt: skip
        self.window.detach_controller()
        await bounded(old_controller.close())
        await bounded(_close_audio(old_audio))
        # The controller's own copy holds the latest of what it takes as intents.
        controller = self._build_stack(settings.with_intents_of(old_controller.settings))
        if was_connected and await controller.connect():
            self.window.show_status(f"Applied {names}: connected with a new session.", 6000)

    # ---------------------------------------------------------------- changes

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
        assert self.controller is not None and self.history is not None, "start() first"
        retention = self.history.retention_days
        assert retention is not None, "start() applies it before building the stack"
        # What is in effect: the stack's settings, and the retention last applied.
        in_effect = dataclasses.replace(self.controller.settings, retention_days=retention)
        needed = changes_needed(in_effect, settings)
        self.history.apply_redaction(settings)  # transcript lines stored from now on
        deleted = 0
        if needed.retention:
            deleted = await self.history.apply_retention(settings.retention_days)
        if needed.new_stack:
            await self.rebuild(settings, needed.new_stack)
        elif deleted:
            self.window.show_status(
                f"Settings saved; {deleted} older session(s) deleted as the history setting asks.",
                6000,
            )
        else:
            self.window.show_status("Settings saved.", 4000)

    async def rebuild(self, settings: AppSettings, changed: tuple[Setting[Any], ...]) -> None:
        """Apply settings fixed at construction: a new stack (see `_swap_stack`). A new
        token service is a new connection too, chosen again as at start."""
        async with self._stack_lock:
            token_url = self._token_url(settings)
            if token_url == self.keys.token_url:
                await self._swap_stack(settings, names_of(changed))
                return
            old_emulator = self.emulator
            self.keys.token_url = token_url
            key = None if token_url else await self.keys.load()
            self._connection, reason = await self._choose_connection(key)
            await self._swap_stack(settings, names_of(changed), after_error=True)
            self.window.set_offline_demo(self.synthetic, reason)
            if old_emulator is not None and old_emulator is not self.emulator:
                await bounded(old_emulator.stop())

    async def use_key(self, key: str) -> None:
        """A key saved while running is used at once: the connection is chosen again (the
        offline demo gives way to the endpoint; a new key replaces a rejected one) and the
        conversation starts anew on it, reconnecting if it was connected."""
        async with self._stack_lock:
            assert self.controller is not None, "start() first"
            old_emulator = self.emulator
            self._connection, reason = await self._choose_connection(key)
            # A rejected key left the controller in ERROR: the new one connects anyway.
            await self._swap_stack(self.controller.settings, "the API key", after_error=True)
            self.window.set_offline_demo(self.synthetic, reason)
            if old_emulator is not None and old_emulator is not self.emulator:
                await bounded(old_emulator.stop())

    async def _delete_all(self) -> str:
        assert self.history is not None, "start() first"
        async with self._stack_lock:  # no stack is swapped meanwhile
            return await self.history.delete_all(self.controller, self.window.forget_consent)

    # ---------------------------------------------------------------- lifetime

    async def settled(self) -> None:
        """Wait (bounded) for a settings apply or a key switch in progress."""
        for task in (self._applying, self.keys.switch):
            if task is not None and not task.done():
                await bounded(asyncio.shield(task))

    async def stop(self) -> None:
        """Close everything in order; every step is bounded, so closing never hangs."""
        self._gaps_timer.stop()
        await self.settled()
        if self.controller is not None:
            self.window.detach_controller()
            await bounded(self.controller.close())
        if self.folders is not None:
            await bounded(asyncio.get_running_loop().run_in_executor(None, self.folders.close))
        await bounded(self.preview.close())
        await bounded(_close_audio(self.audio))
        if self.history is not None:
            await bounded(self.history.at_exit())
        if self.store is not None:
            await bounded(asyncio.get_running_loop().run_in_executor(None, self.store.close))
        if self.emulator is not None:
            await bounded(self.emulator.stop())


async def bounded(aw: Awaitable[object]) -> None:
    """Await a step of closing or swapping parts for at most SHUTDOWN_TIMEOUT_S; a
    failure is logged and the caller carries on."""
    try:
        await asyncio.wait_for(aw, SHUTDOWN_TIMEOUT_S)
    except Exception as exc:
        log.warning("a close step failed: %s", exc)


async def _close_audio(audio: DesktopAudio | None) -> None:
    if audio is not None:
        await asyncio.get_running_loop().run_in_executor(None, audio.close)
