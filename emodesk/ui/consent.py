"""The consent dialog for emotion estimation. Shown with `open()` (never a nested `exec()`
inside a coroutine); the answer arrives through the `decided` signal."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)


class ConsentDialog(QDialog):
    """Accept (allow estimates), decline, or — when consent is already given — revoke.
    `decided(granted)` fires once when the user answers; closing the window by its
    title bar counts as "not now" and keeps whatever was decided before."""

    decided = Signal(bool)

    def __init__(
        self, title: str, text: str, currently_granted: bool, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Emotion estimates")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(460)
        heading = QLabel(title)
        heading.setStyleSheet("font-size: 15px; font-weight: 600;")
        heading.setWordWrap(True)
        self.body = QTextBrowser()
        self.body.setPlainText(text)
        self.body.setOpenLinks(False)
        self.body.setMinimumHeight(240)
        self.status = QLabel(
            "Currently: emotion estimates are ON." if currently_granted
            else "Currently: emotion estimates are OFF."
        )  # fmt: skip
        self.buttons = QDialogButtonBox()
        self.accept_button: QPushButton | None = None
        self.decline_button: QPushButton
        if currently_granted:
            self.decline_button = self.buttons.addButton(
                "Revoke consent", QDialogButtonBox.ButtonRole.DestructiveRole
            )
            keep = self.buttons.addButton("Keep on", QDialogButtonBox.ButtonRole.RejectRole)
            keep.clicked.connect(self.reject)
        else:
            self.accept_button = self.buttons.addButton(
                "Allow emotion estimates", QDialogButtonBox.ButtonRole.AcceptRole
            )
            self.accept_button.setDefault(True)
            self.accept_button.clicked.connect(lambda: self._answer(True))
            self.decline_button = self.buttons.addButton(
                "No thanks", QDialogButtonBox.ButtonRole.RejectRole
            )
        self.decline_button.clicked.connect(lambda: self._answer(False))
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.answer: bool | None = None

    def _answer(self, granted: bool) -> None:
        self.answer = granted
        self.decided.emit(granted)
        self.done(QDialog.DialogCode.Accepted if granted else QDialog.DialogCode.Rejected)
