"""The transcript: both sides of the conversation as a Qt list model (one row per side per
turn, pieces appended as they stream in) and the panel that shows it with a box to type
a turn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

ROLE_TITLES = {"user": "You", "model": "Gemini"}
_BACKGROUNDS = {"user": QColor("#e6f6f4"), "model": QColor("#fdf0e1")}
_ModelIndex = QModelIndex | QPersistentModelIndex


@dataclass(slots=True)
class TranscriptEntry:
    role: str
    turn: int
    text: str
    final: bool = False


class TranscriptModel(QAbstractListModel):
    """Rows in arrival order. A non-final piece for the same side and turn as an open row
    extends it; a final line carries that side's whole turn text and replaces the pieces
    (the controller joins and trims them); anything else starts a new row."""

    RoleRole = Qt.ItemDataRole.UserRole + 1
    TurnRole = Qt.ItemDataRole.UserRole + 2
    FinalRole = Qt.ItemDataRole.UserRole + 3

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.entries: list[TranscriptEntry] = []

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.entries)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.entries):
            return None
        entry = self.entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{ROLE_TITLES.get(entry.role, entry.role)}\n{entry.text.strip()}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"Turn {entry.turn}"
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(_BACKGROUNDS.get(entry.role, QColor("#f1f3f5")))
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor("#1f2328" if entry.final else "#57606a"))
        if role == Qt.ItemDataRole.FontRole and not entry.final:
            font = QFont()
            font.setItalic(True)
            return font
        if role == self.RoleRole:
            return entry.role
        if role == self.TurnRole:
            return entry.turn
        if role == self.FinalRole:
            return entry.final
        return None

    def add_piece(self, role: str, text: str, turn: int, final: bool) -> None:
        open_row = self._open_row(role, turn)
        if open_row is None:
            if not text.strip() and final:
                return  # an empty closing piece for a row we never opened
            self.beginInsertRows(QModelIndex(), len(self.entries), len(self.entries))
            self.entries.append(TranscriptEntry(role, turn, text, final))
            self.endInsertRows()
            return
        entry = self.entries[open_row]
        if final:
            entry.text = text or entry.text
            entry.final = True
        else:
            entry.text += text
        index = self.index(open_row)
        self.dataChanged.emit(index, index)

    def _open_row(self, role: str, turn: int) -> int | None:
        # Both sides can stream at once (the reply starts while the user's transcript
        # finishes), so look back a few rows rather than only at the last one.
        for row in range(len(self.entries) - 1, max(-1, len(self.entries) - 4), -1):
            entry = self.entries[row]
            if entry.role == role and entry.turn == turn and not entry.final:
                return row
        return None

    def clear(self) -> None:
        self.beginResetModel()
        self.entries.clear()
        self.endResetModel()

    def plain_text(self) -> str:
        return "\n".join(
            f"{ROLE_TITLES.get(e.role, e.role)}: {e.text.strip()}" for e in self.entries
        )


class TranscriptPanel(QWidget):
    text_submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = TranscriptModel(self)
        title = QLabel("Transcript")
        title.setObjectName("sectionTitle")
        self.view = QListView()
        self.view.setObjectName("transcript")
        self.view.setModel(self.model)
        self.view.setWordWrap(True)
        self.view.setUniformItemSizes(False)
        self.view.setSpacing(2)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        # Lines wrap to the panel's width; a horizontal bar would only scroll empty space.
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty_hint = QLabel("Hold the talk button (or Space) and speak, or type below.")
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setStyleSheet("color: #6b7280; padding: 6px;")
        self.input = QLineEdit()
        self.input.setPlaceholderText("Type a message…")
        self.input.setClearButtonEnabled(True)
        self.input.setToolTip("Type a turn instead of speaking; Enter sends it")
        self.send_button = QPushButton("Send")
        self.send_button.setEnabled(False)
        self.input.textChanged.connect(lambda text: self.send_button.setEnabled(bool(text.strip())))
        self.input.returnPressed.connect(self._submit)
        self.send_button.clicked.connect(self._submit)

        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)
        self.model.rowsInserted.connect(self._on_rows_changed)
        self.model.dataChanged.connect(self._on_rows_changed)
        self.model.modelReset.connect(self._on_rows_changed)

    def add_line(self, role: str, text: str, turn: int, final: bool) -> None:
        self.model.add_piece(role, text, turn, final)

    def _on_rows_changed(self, *args: object) -> None:
        self.empty_hint.setVisible(not self.model.entries)
        self.view.scrollToBottom()

    def _submit(self) -> None:
        text = self.input.text().strip()
        if not text:
            return
        self.input.clear()
        self.text_submitted.emit(text)
