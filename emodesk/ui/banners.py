"""Banners above the plots: one per kind of trouble (escalation, lost microphone, invalid
key, reconnecting, ...), each with the button that fixes it and a close button. A new
notice of the same kind replaces the old one instead of stacking up."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from emodesk.ui import theme


class Banner(QFrame):
    def __init__(
        self,
        key: str,
        level: str,
        message: str,
        action_text: str = "",
        on_action: Callable[[], None] | None = None,
        on_close: Callable[[], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.key = key
        self.level = level
        background, border = theme.BANNER_STYLES.get(level, theme.BANNER_STYLES["info"])
        self.setObjectName("banner")
        self.setStyleSheet(
            f"QFrame#banner {{ background: {background}; border: 1px solid {border};"
            f" border-left: 5px solid {border}; border-radius: 4px; }}"
            " QFrame#banner QLabel { color: #1f2328; }"
        )
        self.message = QLabel(message)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        layout.addWidget(self.message, 1)
        self.action_button: QPushButton | None = None
        if action_text and on_action is not None:
            self.action_button = QPushButton(action_text)
            self.action_button.clicked.connect(on_action)
            layout.addWidget(self.action_button)
        self.close_button = QPushButton("✕")
        self.close_button.setFlat(True)
        self.close_button.setFixedWidth(28)
        self.close_button.setToolTip("Dismiss")
        if on_close is not None:
            self.close_button.clicked.connect(on_close)
        layout.addWidget(self.close_button)


class BannerArea(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self.banners: dict[str, Banner] = {}
        self.hide()

    def show_banner(
        self,
        key: str,
        level: str,
        message: str,
        action_text: str = "",
        on_action: Callable[[], None] | None = None,
    ) -> Banner:
        self.dismiss(key)

        def run_action() -> None:
            if on_action is not None:
                on_action()
            self.dismiss(key)

        banner = Banner(
            key, level, message, action_text, run_action if on_action else None,
            on_close=lambda: self.dismiss(key),
        )  # fmt: skip
        self.banners[key] = banner
        self._layout.addWidget(banner)
        self.show()
        return banner

    def dismiss(self, key: str) -> None:
        banner = self.banners.pop(key, None)
        if banner is not None:
            banner.hide()
            self._layout.removeWidget(banner)
            banner.deleteLater()
        if not self.banners:
            self.hide()

    def messages(self) -> dict[str, str]:
        return {key: banner.message.text() for key, banner in self.banners.items()}
