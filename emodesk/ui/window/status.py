"""The status bar's standing parts: the connection state (counting down to the next try
while reconnecting), the offline-demo label with its "Add API key…" button, the tutor's
current topic, the last turn's latency and the model. Passing messages go through
`QStatusBar.showMessage`."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtWidgets import QLabel, QPushButton, QStatusBar

from emodesk.conversation.api import ConversationState

S = ConversationState
STATE_TEXT = {
    S.OFFLINE: ("Disconnected", "#6b7280"),
    S.CONNECTING: ("Connecting…", "#e0a100"),
    S.READY: ("Connected", "#2f9e44"),
    S.LISTENING: ("Listening", "#38bdb0"),
    S.WAITING: ("Waiting for the reply", "#4f8fe6"),
    S.REPLYING: ("Replying", "#f59e42"),
    S.RECONNECTING: ("Reconnecting", "#e0a100"),
    S.ERROR: ("Connection failed", "#e5533d"),
}
SYNTHETIC_TEXT = "Offline demo: replies are synthetic"
# The demo has no model to judge emotion: say what stands in for it.
SYNTHETIC_TIP = (
    'The offline demo\'s replies are synthetic speech, and its "model" emotion reading '
    "is a plain stand-in rule (the words of a typed turn, the loudness of a spoken one), "
    "independent of the app's own acoustic estimator."
)


class StatusLine:
    """Fills `bar`. What `add_key_button` does is the window's to connect."""

    def __init__(
        self, bar: QStatusBar, model: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.state = S.OFFLINE
        self._retry_at: float | None = None
        self.state_label = QLabel()
        self.model_label = QLabel(model)
        self.model_label.setToolTip("Model")
        self.gaps_label = QLabel("")
        self.gaps_label.setToolTip(
            "Times the reply's audio ran dry and a gap was heard (the playout buffer's "
            "underruns and the sound system's)"
        )
        self.gaps_label.hide()
        self.latency_label = QLabel("")
        self.latency_label.setToolTip("Last turn: push-to-talk released → first reply audio")
        self.synthetic_label = QLabel(SYNTHETIC_TEXT)
        self.synthetic_label.setToolTip(SYNTHETIC_TIP)
        self.synthetic_label.setStyleSheet("color: #b35900; font-weight: 600;")
        self.synthetic_label.hide()
        self.add_key_button = QPushButton("Add API key…")
        self.add_key_button.setFlat(True)
        self.add_key_button.hide()
        self.topic_label = QLabel("")
        self.topic_label.setToolTip("The course topic the lesson is on")
        self.topic_label.hide()
        bar.addWidget(self.state_label)
        bar.addWidget(self.synthetic_label)
        bar.addWidget(self.add_key_button)
        bar.addPermanentWidget(self.topic_label)
        bar.addPermanentWidget(self.gaps_label)
        bar.addPermanentWidget(self.latency_label)
        bar.addPermanentWidget(self.model_label)
        self._show_state()

    def show_state(self, state: ConversationState, retry_in_s: float | None = None) -> None:
        """`retry_in_s`: while reconnecting, the wait before the next try, counted down."""
        self.state = state
        self._retry_at = None
        if state is S.RECONNECTING and retry_in_s is not None:
            self._retry_at = self._clock() + retry_in_s
        self._show_state()

    def tick(self) -> bool:
        """The reconnect countdown; True when its text changed."""
        if self._retry_at is None:
            return False
        before = self.state_label.text()
        self._show_state()
        return before != self.state_label.text()

    def _show_state(self) -> None:
        text, colour = STATE_TEXT.get(self.state, (str(self.state), "#6b7280"))
        if self._retry_at is not None:
            left = max(0, round(self._retry_at - self._clock()))
            text = f"Reconnecting in {left} s"
        self.state_label.setText(f'<span style="color:{colour}">●</span> {text}')

    def show_model(self, model: str) -> None:
        self.model_label.setText(model)

    def show_audio_gaps(self, count: int) -> None:
        """How often the reply's audio has run dry since the app started; hidden at 0."""
        self.gaps_label.setText(f"Audio gaps: {count}")
        self.gaps_label.setVisible(count > 0)

    def show_latency(self, to_first_audio_s: float | None) -> None:
        """The last turn's key-up to first reply audio; nothing for a turn with no such
        figure (hands-free), rather than an older turn's."""
        if to_first_audio_s is None:
            self.latency_label.clear()
        else:
            self.latency_label.setText(f"Last turn: {to_first_audio_s * 1000:.0f} ms")

    def show_topic(self, title: str) -> None:
        """The tutor's current topic ("" hides it: no course, or another profile)."""
        self.topic_label.setText(f"Topic: {title}" if title else "")
        self.topic_label.setVisible(bool(title))

    def show_synthetic(self, synthetic: bool, has_key: bool) -> None:
        self.synthetic_label.setVisible(synthetic)
        self.add_key_button.setVisible(synthetic and not has_key)
