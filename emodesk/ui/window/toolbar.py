"""The main window's toolbar: connect, the voices (featured ones as buttons, the rest in
a menu), the profile, emotion consent, the export menu, the history and settings. It
builds and shows; what the controls do is the window's (it connects their signals)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QMenu, QToolBar, QToolButton, QWidget

from emodesk.conversation.api import CONNECTED_STATES, ConversationState

_BUSY = frozenset({ConversationState.CONNECTING, ConversationState.RECONNECTING})


class MainToolbar(QToolBar):
    """`voice_chosen(voice)` and `profile_chosen(key)` say what the user picked; the
    actions (`connect_action`, `consent_action`, `history_action`, `settings_action`)
    are triggered as they are. `export_button` is placed after the consent action."""

    voice_chosen = Signal(str)
    profile_chosen = Signal(str)

    def __init__(
        self,
        voices: Sequence[str],
        featured_voices: Sequence[str],
        profiles: Sequence[tuple[str, str]],
        export_button: QWidget,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Main", parent)
        self.featured_voices = tuple(featured_voices)
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)

        self.connect_action = QAction("Connect", self)
        self.connect_action.setShortcut(QKeySequence("Ctrl+K"))
        self.connect_action.setToolTip("Connect to the Live service (Ctrl+K)")
        self.connect_action.setEnabled(False)
        self.addAction(self.connect_action)
        self.addSeparator()

        self._build_voices(voices)
        self.addSeparator()

        self.addWidget(QLabel(" Profile "))
        self.profile_box = QComboBox()
        for key, title in profiles:
            self.profile_box.addItem(title, key)
        self.profile_box.activated.connect(
            lambda index: self.profile_chosen.emit(self.profile_box.itemData(index))
        )
        self.profile_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.addWidget(self.profile_box)
        self.addSeparator()

        self.consent_action = QAction("Emotion: off", self)
        self.addAction(self.consent_action)
        self.addWidget(export_button)
        self.history_action = QAction("History", self)
        self.history_action.setShortcut(QKeySequence("Ctrl+H"))
        self.history_action.setToolTip(
            "Past sessions by day, their timelines and transcripts, and the last 7/30/90 days"
            " (Ctrl+H)"
        )
        self.addAction(self.history_action)

        spacer = QWidget()
        spacer.setSizePolicy(
            spacer.sizePolicy().Policy.Expanding, spacer.sizePolicy().Policy.Preferred
        )
        self.addWidget(spacer)
        self.settings_action = QAction("Settings", self)
        self.settings_action.setShortcut(QKeySequence.StandardKey.Preferences)
        self.addAction(self.settings_action)

    def _build_voices(self, voices: Sequence[str]) -> None:
        self.addWidget(QLabel(" Voice "))
        self.voice_group = QActionGroup(self)
        self.voice_group.setExclusive(True)
        self.voice_group.triggered.connect(lambda action: self.voice_chosen.emit(action.data()))
        self.voice_actions: dict[str, QAction] = {}
        for voice in voices:
            action = QAction(voice, self)
            action.setCheckable(True)
            action.setToolTip(f"Reply with the voice {voice}")
            action.setData(voice)
            self.voice_group.addAction(action)
            self.voice_actions[voice] = action
        for voice in self.featured_voices:
            if voice in self.voice_actions:
                self.addAction(self.voice_actions[voice])
                button = self.widgetForAction(self.voice_actions[voice])
                if button is not None:
                    button.setObjectName("voiceButton")
        self.more_voices = QToolButton()
        self.more_voices.setText("More voices")
        self.more_voices.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.more_voices_menu = QMenu(self.more_voices)
        for voice in voices:
            if voice not in self.featured_voices:
                self.more_voices_menu.addAction(self.voice_actions[voice])
        self.more_voices.setMenu(self.more_voices_menu)
        self.addWidget(self.more_voices)

    def show_voice(self, voice: str) -> None:
        """Checks the voice in use; the menu's button names it when it is not featured."""
        action = self.voice_actions.get(voice)
        if action is not None:
            action.setChecked(True)
        featured = voice in self.featured_voices
        self.more_voices.setText("More voices" if featured else f"{voice} ▾")

    def show_profile(self, key: str) -> None:
        self.profile_box.setCurrentIndex(max(0, self.profile_box.findData(key)))

    def show_state(self, state: ConversationState) -> None:
        """Connect, or Disconnect while connected or on the way."""
        on = state in CONNECTED_STATES or state in _BUSY
        self.connect_action.setText("Disconnect" if on else "Connect")

    def show_consent(self, granted: bool) -> None:
        self.consent_action.setText("Emotion: on" if granted else "Emotion: off")
        self.consent_action.setToolTip(
            "Emotion estimates are on — click to review or revoke consent" if granted
            else "Emotion estimates are off — click to read what they do and allow them"
        )  # fmt: skip
