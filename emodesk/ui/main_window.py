"""The main window: toolbar (voices, profile, connect, consent, export), banners, the
scope and the emotion timeline, the push-to-talk row, the transcript and the status bar.

It shows what the controller's events say and sends intents through `ControllerProtocol`;
it never holds conversation state of its own beyond what is on screen. A window can exist
before its controller does (`attach_controller`), so it appears before the heavy parts of
the app are imported.

Its parts live in `emodesk.ui.window` (toolbar, export menu, consent flow, notice table,
status line); this class builds the central area, routes events and intents between
them and the controller, and keeps the settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from emodesk.conversation.api import (
    CONNECTED_STATES,
    ControllerEvent,
    ControllerProtocol,
    ConversationState,
    Intent,
    IntentRefused,
    Notice,
    NoticeKind,
    ReadingAdded,
    ReplyRestarted,
    SessionEnded,
    SessionStarted,
    SettingsChanged,
    StateChanged,
    TopicChanged,
    TranscriptLine,
    TrendChanged,
    TurnClosed,
    TurnLatency,
)
from emodesk.core.settings import AppSettings, parse_settings
from emodesk.ui import theme
from emodesk.ui.banners import BannerArea
from emodesk.ui.consent import ConsentDialog
from emodesk.ui.frameclock import FrameClock
from emodesk.ui.ptt import DEFAULT_PTT_KEY, PushToTalkKey, key_from_text
from emodesk.ui.scope import SampleSource, ScopeView
from emodesk.ui.services import Services
from emodesk.ui.settings_dialog import SettingsDialog
from emodesk.ui.settings_store import SettingsStore
from emodesk.ui.timeline import TimelineView
from emodesk.ui.transcript import TranscriptPanel
from emodesk.ui.window.consent_flow import ConsentFlow
from emodesk.ui.window.consent_flow import ConsentInfo as ConsentInfo
from emodesk.ui.window.dialogs import replace_dialog
from emodesk.ui.window.export import ExportMenu
from emodesk.ui.window.notices import ANOTHER_APPROACH as ANOTHER_APPROACH
from emodesk.ui.window.notices import NoticePresenter
from emodesk.ui.window.status import SYNTHETIC_TEXT as SYNTHETIC_TEXT
from emodesk.ui.window.status import StatusLine
from emodesk.ui.window.tasks import Tasks
from emodesk.ui.window.toolbar import MainToolbar

if TYPE_CHECKING:
    from emodesk.ui.history import HistoryWindow

log = logging.getLogger(__name__)

S = ConversationState


@dataclass(frozen=True)
class WindowOptions:
    voices: Sequence[str]
    featured_voices: Sequence[str]
    profiles: Sequence[tuple[str, str]]  # (key, title)
    consent: ConsentInfo


FIRST_SIZE = (1280, 800)
# A "switching…" message is cleared when the new connection is ready; at most this long.
SWITCH_MESSAGE_MS = 15_000
# Room for a title bar and borders before the window manager has framed the window; the
# first show then corrects by the real frame.
FRAME_ALLOWANCE = (16, 40)


class MainWindow(QMainWindow):
    # New settings from the dialog (already saved); the composition root applies them.
    settings_applied = Signal(object)
    history_window: HistoryWindow | None = None  # the last one opened
    closing = Signal()

    def __init__(
        self,
        options: WindowOptions,
        store: SettingsStore,
        settings: AppSettings,
        services: Services | None = None,
    ) -> None:
        super().__init__()
        self.options = options
        self.store = store
        self.settings = settings
        self.services = services or Services()
        self.controller: ControllerProtocol | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.tasks = Tasks(lambda error: self.statusBar().showMessage(f"Error: {error}", 8000))
        self.state = S.OFFLINE
        self._switching = ""  # the "switching…" status message shown, if any
        self.voice = settings.voice
        self.profile = settings.profile
        self.consent_flow = ConsentFlow(self, options.consent)
        self.consent = self.consent_flow.granted()
        self.hands_free = settings.hands_free
        self.synthetic = False
        self.session_id: str | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.last_refusal: IntentRefused | None = None

        self.setWindowTitle("EmoDesk")
        # Fits a 1024x640 screen under a title bar and a panel.
        self.setMinimumSize(960, 540)
        self.setStyleSheet(theme.STYLE_SHEET)
        self.clock = FrameClock(self)
        self._build_toolbar()
        self._build_central()
        self._build_status_bar()
        self.notices = NoticePresenter(self.banners, self.statusBar().showMessage, self)
        self.ptt_key = PushToTalkKey(self, self._usable_key(settings.push_to_talk_key))
        self.ptt_key.pressed.connect(self._ptt_down)
        self.ptt_key.released.connect(self._ptt_up)
        self._update_ptt_label()
        self.clock.add(self.scope.tick)
        self.clock.add(self.timeline.tick)
        self.clock.add(self.status_line.tick)
        self.show_consent(self.consent)
        self._show_state()
        geometry = store.geometry()
        self._fit_on_show = geometry is None or not self.restoreGeometry(geometry)
        if self._fit_on_show:
            self._first_size()

    # ================================================================== construction
    def _build_toolbar(self) -> None:
        self.export = ExportMenu(self)
        # The menu's actions under the names tests use.
        self.export_csv_action = self.export.csv_action
        self.report_action = self.export.report_action

        options = self.options
        bar = MainToolbar(
            options.voices, options.featured_voices, options.profiles, self.export.button
        )
        self.addToolBar(bar)
        self.toolbar = bar
        bar.connect_action.triggered.connect(self._toggle_connection)
        bar.voice_chosen.connect(self.request_voice)
        bar.profile_chosen.connect(self._profile_chosen)
        bar.consent_action.triggered.connect(self.open_consent_dialog)
        bar.settings_action.triggered.connect(lambda: self.open_settings())
        bar.history_action.triggered.connect(self.open_history)
        bar.show_voice(self.voice)
        bar.show_profile(self.profile)
        # The controls under the names the app and its tests use.
        self.connect_action = bar.connect_action
        self.voice_actions = bar.voice_actions
        self.more_voices = bar.more_voices
        self.profile_box = bar.profile_box
        self.consent_action = bar.consent_action

    def _build_central(self) -> None:
        self.banners = BannerArea()
        self.scope = ScopeView()
        self.timeline = TimelineView()
        self.transcript = TranscriptPanel()
        self.transcript.text_submitted.connect(self.send_text)

        self.ptt_button = QPushButton("Hold to talk")
        self.ptt_button.setObjectName("pushToTalk")
        self.ptt_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.ptt_button.pressed.connect(self._ptt_down)
        self.ptt_button.released.connect(self._ptt_up)
        self.hands_free_button = QPushButton("Hands-free")
        self.hands_free_button.setCheckable(True)
        self.hands_free_button.setChecked(self.hands_free)
        self.hands_free_button.setMinimumHeight(54)
        self.hands_free_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hands_free_button.setToolTip("Talk without holding a key: the model detects speech")
        self.hands_free_button.toggled.connect(self.request_hands_free)
        ptt_row = QHBoxLayout()
        ptt_row.addWidget(self.ptt_button, 1)
        ptt_row.addWidget(self.hands_free_button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.scope, 4)
        left_layout.addWidget(self.timeline, 5)
        left_layout.addLayout(ptt_row)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.transcript)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        left.setMinimumWidth(520)
        self.transcript.setMinimumWidth(280)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.addWidget(self.banners)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

    def _build_status_bar(self) -> None:
        bar = QStatusBar()
        self.setStatusBar(bar)
        self.status_line = StatusLine(bar, self.settings.model)
        self.status_line.add_key_button.clicked.connect(lambda: self.open_settings("API key"))
        # Its parts under the names tests use.
        self.state_label = self.status_line.state_label
        self.model_label = self.status_line.model_label
        self.latency_label = self.status_line.latency_label
        self.synthetic_label = self.status_line.synthetic_label
        self.add_key_button = self.status_line.add_key_button

    # ================================================================== controller wiring
    def attach_controller(
        self,
        controller: ControllerProtocol,
        mic: SampleSource | None = None,
        reply: SampleSource | None = None,
    ) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.controller = controller
        self._unsubscribe = controller.subscribe(self.on_event)
        self.scope.attach(mic, reply)
        self.state = controller.state
        self.status_line.show_state(controller.state)
        self.connect_action.setEnabled(True)
        self._show_state()

    def detach_controller(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = None
        self.controller = None
        self.scope.attach(None, None)
        self.connect_action.setEnabled(False)

    def on_event(self, event: ControllerEvent) -> None:
        match event:
            case StateChanged():
                self._on_state(event)
            case SessionStarted():
                self.session_id = event.session_id
                self.synthetic = event.synthetic
                self.status_line.show_model(event.model)
                self.toolbar.show_voice(event.voice)
                self.timeline.reset()
                self.transcript.model.clear()
                self._show_synthetic()
            case SessionEnded():
                pass
            case TranscriptLine():
                self.transcript.add_piece(event.role, event.text, event.turn)
            case ReplyRestarted():
                self.transcript.restart_reply(event.turn)
            case TurnClosed():
                self.transcript.settle(
                    event.turn, event.outcome, event.reason, event.user_text, event.model_text
                )
            case ReadingAdded():
                if self.consent:
                    self.timeline.add_reading(event)
            case TrendChanged():
                if self.consent:
                    self.timeline.set_trend(event.trend, event.escalate, event.advice)
            case TurnLatency():
                self.status_line.show_latency(event.to_first_audio_s)
            case Notice():
                self.notices.show(event)
            case IntentRefused():
                self._on_refused(event)
            case SettingsChanged():
                self._on_settings_changed(event)
                if event.profile != "tutor":
                    self.status_line.show_topic("")
            case TopicChanged():
                self.status_line.show_topic(event.title)

    def _on_state(self, event: StateChanged) -> None:
        self.state = event.state
        if self._switching and event.state is S.READY:
            if self.statusBar().currentMessage() == self._switching:
                self.statusBar().clearMessage()  # the switch is done: say so no longer
            self._switching = ""
        self.status_line.show_state(event.state, event.retry_in_s)
        if event.state in CONNECTED_STATES:
            self.banners.dismiss(NoticeKind.RECONNECTING)
            self.banners.dismiss(NoticeKind.CONNECTION_FAILED)
        if event.state not in CONNECTED_STATES and self.ptt_key.held:
            self.ptt_key.held = False
        self._show_state()

    def _show_state(self) -> None:
        """The controls that depend on the state (the status line shows it itself)."""
        connected = self.state in CONNECTED_STATES
        self.toolbar.show_state(self.state)
        self.ptt_button.setEnabled(connected and not self.hands_free)
        self.ptt_button.setProperty(
            "held", "true" if self.state is S.LISTENING and not self.hands_free else "false"
        )
        self.ptt_button.style().unpolish(self.ptt_button)
        self.ptt_button.style().polish(self.ptt_button)
        self.transcript.send_button.setEnabled(
            connected and bool(self.transcript.input.text().strip())
        )
        self._update_ptt_label()

    def _update_ptt_label(self) -> None:
        key = getattr(self, "ptt_key", None)
        key_name = key.key_text if key is not None else DEFAULT_PTT_KEY
        if self.hands_free:
            self.ptt_button.setText("Hands-free: just speak")
        elif self.state is S.LISTENING:
            self.ptt_button.setText("Listening… release to send")
        elif self.state in CONNECTED_STATES:
            self.ptt_button.setText(f"Hold to talk  ({key_name})")
        else:
            self.ptt_button.setText("Connect to talk")

    def _show_synthetic(self) -> None:
        self.status_line.show_synthetic(self.synthetic, self.services.has_api_key())

    def set_offline_demo(self, offline: bool, reason: str = "") -> None:
        """The composition root says the app runs on the emulator (no key, or --offline)."""
        self.synthetic = offline
        self._show_synthetic()
        if offline:

            def add_key() -> None:
                self.open_settings("API key")

            self.banners.show_banner(
                "offline",
                "info",
                reason or "No API key: this is the offline demo, with synthetic replies.",
                "Add API key…",
                add_key,
            )
        else:
            self.banners.dismiss("offline")

    def show_status(self, text: str, ms: int) -> None:
        """A passing message in the status bar, for `ms` milliseconds."""
        self.statusBar().showMessage(text, ms)

    def show_audio_gaps(self, count: int) -> None:
        """The reply's audio ran dry `count` times so far (the status bar counts it)."""
        self.status_line.show_audio_gaps(count)

    def show_banner(
        self,
        key: str,
        level: str,
        text: str,
        action_text: str = "",
        action: Callable[[], None] | None = None,
    ) -> None:
        """A banner above the conversation, replacing one with the same `key`. Its button
        (`action_text`) runs `action`, if any, and closes it."""
        if action_text and action is None:
            action = _close_only
        self.banners.show_banner(key, level, text, action_text, action)

    def _on_refused(self, event: IntentRefused) -> None:
        self.last_refusal = event
        log.info("refused %s: %s", event.intent, event.reason)
        if event.intent is Intent.EXPORT:
            self.export.export_failed(event.reason)
        elif event.intent in (Intent.CHANGE_VOICE, Intent.CHANGE_PROFILE):
            self.toolbar.show_voice(self.voice)
            self.toolbar.show_profile(self.profile)
            self.statusBar().showMessage(f"Not changed: {event.reason}", 5000)
        elif event.intent is not Intent.PUSH_TO_TALK_UP:
            self.statusBar().showMessage(event.reason, 5000)

    def _on_settings_changed(self, event: SettingsChanged) -> None:
        changed = dataclasses.replace(
            self.settings, voice=event.voice, profile=event.profile, hands_free=event.hands_free
        )
        if changed != self.settings:
            self.save_settings(changed)
        self.voice = event.voice
        self.toolbar.show_voice(event.voice)
        self.profile = event.profile
        self.toolbar.show_profile(event.profile)
        self.hands_free = event.hands_free
        self.hands_free_button.blockSignals(True)
        self.hands_free_button.setChecked(event.hands_free)
        self.hands_free_button.blockSignals(False)
        self.show_consent(event.consent)
        self._show_state()

    def show_consent(self, granted: bool) -> None:
        self.consent = granted
        self.toolbar.show_consent(granted)
        if self.timeline.enabled_for_emotion != granted or not self.timeline.data.readings:
            self.timeline.set_emotion_enabled(granted)
        if not granted:
            self.banners.dismiss(NoticeKind.ESCALATION)

    # ================================================================== intents
    def run_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self.tasks.run(coro)

    def _toggle_connection(self) -> None:
        if self.controller is None:
            return
        if self.state in CONNECTED_STATES or self.state in (S.CONNECTING, S.RECONNECTING):
            self.run_task(self.controller.disconnect())
        else:
            self.run_task(self._connect())

    def connect_now(self) -> None:
        self.run_task(self._connect())

    async def _connect(self) -> None:
        if self.controller is not None:
            await self.controller.connect()

    def reconnect_now(self) -> None:
        async def cycle() -> None:
            if self.controller is not None:
                await self.controller.disconnect()
                await self.controller.connect()

        self.run_task(cycle())

    def request_voice(self, voice: str) -> None:
        if self.controller is None or voice == self.voice:
            self.toolbar.show_voice(self.voice if self.controller is None else voice)
            return
        if self.state in CONNECTED_STATES or self.state is S.RECONNECTING:
            self._show_switching(f"Switching the voice to {voice}: reconnecting…")
        self.run_task(self.controller.change_voice(voice))

    def _profile_chosen(self, key: str) -> None:
        if self.controller is None or key == self.profile:
            return
        if self.state in CONNECTED_STATES:
            self._show_switching("Switching the profile: reconnecting…")
        self.run_task(self.controller.change_profile(key))

    def _show_switching(self, message: str) -> None:
        """Shown until the new connection is ready (at most SWITCH_MESSAGE_MS)."""
        self._switching = message
        self.statusBar().showMessage(message, SWITCH_MESSAGE_MS)

    def request_hands_free(self, enabled: bool) -> None:
        if self.controller is None:
            return
        if self.ptt_key.held:
            self.ptt_key.release()
        if not self.controller.set_hands_free(enabled):
            self.hands_free_button.blockSignals(True)
            self.hands_free_button.setChecked(self.hands_free)
            self.hands_free_button.blockSignals(False)

    def send_text(self, text: str) -> None:
        if self.controller is not None:
            self.run_task(self.controller.send_text(text))

    def _ptt_down(self) -> None:
        if self.controller is not None and not self.hands_free:
            self.controller.push_to_talk_down()

    def _ptt_up(self) -> None:
        # Always sent, even if the press was refused: the controller ignores a stray up.
        if self.controller is not None and not self.hands_free:
            self.controller.push_to_talk_up()

    # ================================================================== consent
    def consent_needed(self) -> bool:
        return self.consent_flow.needed()

    def open_consent_dialog(self) -> ConsentDialog:
        return self.consent_flow.open()

    @property
    def consent_dialog(self) -> ConsentDialog | None:
        return self.consent_flow.dialog

    def forget_consent(self) -> None:
        """All data was deleted: the deleted session's timeline and transcript leave the
        screen, and the saved consent answer goes too (emotion is off; the question
        comes again at the next start)."""
        self.session_id = None
        self.timeline.reset()
        self.transcript.model.clear()
        self.consent_flow.forget()

    # ================================================================== settings
    def save_settings(self, settings: AppSettings) -> None:
        """The one place the window keeps and saves its settings."""
        self.settings = settings
        self.store.save(settings)

    def open_settings(self, tab: str = "") -> SettingsDialog:
        if self.settings_dialog is not None and self.settings_dialog.isVisible():
            self.settings_dialog.raise_()
            return self.settings_dialog
        values = self.settings.to_mapping()
        dialog = SettingsDialog(values, self.options.profiles, self.services, self)
        for index in range(dialog.tabs.count()):
            if dialog.tabs.tabText(index) == tab:
                dialog.tabs.setCurrentIndex(index)
        dialog.applied.connect(self._settings_applied)
        self.clock.add(dialog.tick)
        dialog.finished.connect(lambda _: self._forget_dialog(dialog))
        self.settings_dialog = replace_dialog(self.settings_dialog, dialog)
        dialog.open()
        return dialog

    def _forget_dialog(self, dialog: SettingsDialog) -> None:
        self.clock.remove(dialog.tick)

    def _settings_applied(self, values: dict[str, Any]) -> None:
        new, rejected = parse_settings({**self.settings.to_mapping(), **values})
        if rejected:
            self.statusBar().showMessage(f"Not saved (invalid): {', '.join(rejected)}", 6000)
        key = self._usable_key(new.push_to_talk_key)
        new = dataclasses.replace(new, push_to_talk_key=key)
        self.ptt_key.set_key(key)
        self._update_ptt_label()
        old = self.settings
        self.save_settings(new)
        if self.controller is not None:
            if new.profile != old.profile:
                self.run_task(self.controller.change_profile(new.profile))
            tuning = (new.vad_sensitivity, new.vad_silence_ms)
            if tuning != (old.vad_sensitivity, old.vad_silence_ms):
                self.run_task(self.controller.tune_hands_free(*tuning))
        self.status_line.show_model(new.model)
        self.settings_applied.emit(new)

    def _usable_key(self, text: str) -> str:
        try:
            key_from_text(text)
        except ValueError:
            return DEFAULT_PTT_KEY
        return text

    # ================================================================== history
    def open_history(self) -> HistoryWindow | None:
        """The History window over the session history (one, raised when open again)."""
        source = self.services.history
        if source is None:
            self.statusBar().showMessage("The session history is not open yet.", 4000)
            return None
        from emodesk.ui.history import HistoryWindow  # pyqtgraph charts: built on demand

        window = self.history_window
        if window is None or window.source is not source:
            window = HistoryWindow(source, self)
            self.history_window = replace_dialog(self.history_window, window)
        else:
            window.reload()
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    # ================================================================== export
    def open_export_dialog(self, fmt: str = "csv", session_id: str | None = None) -> QFileDialog:
        return self.export.open_dialog(fmt, session_id)

    def export_to(self, path: str, fmt: str, session_id: str | None = None) -> asyncio.Task[Any]:
        return self.export.export_to(path, fmt, session_id)

    def show_session_report(self) -> None:
        self.export.show_report()

    @property
    def export_dialog(self) -> QFileDialog | None:
        return self.export.dialog

    @property
    def message_box(self) -> QMessageBox | None:
        return self.export.message_box

    # ================================================================== first size
    def _first_size(self) -> None:
        """1280x800 where it fits; on a smaller screen the available area (its panels
        left out) less room for the window manager's frame, so the status bar shows."""
        width, height = FIRST_SIZE
        area = self._available_area()
        if area is not None:
            width = min(width, area.width() - FRAME_ALLOWANCE[0])
            height = min(height, area.height() - FRAME_ALLOWANCE[1])
            self.move(area.x() + (area.width() - width) // 2, area.y())
        self.resize(width, height)

    def _available_area(self) -> QRect | None:
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else None

    def _fit_frame_to_screen(self) -> None:
        """Once framed: if the frame still runs past the screen, take the difference."""
        area, frame = self._available_area(), self.frameGeometry()
        if area is None:
            return
        over_w = max(0, frame.width() - area.width())
        over_h = max(0, frame.height() - area.height())
        if over_w or over_h:
            self.resize(self.width() - over_w, self.height() - over_h)
        self.move(max(area.x(), frame.x()), max(area.y(), frame.y()))

    # ================================================================== lifecycle
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.clock.start()
        if self._fit_on_show:
            self._fit_on_show = False
            self._fit_frame_to_screen()

    def hideEvent(self, event: Any) -> None:
        self.ptt_key.release()
        self.clock.stop()
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.ptt_key.release()
        self.store.set_geometry(self.saveGeometry())
        self.closing.emit()
        super().closeEvent(event)


def _close_only() -> None:
    """A banner button that only closes its banner."""
