"""The transcript: both sides of the conversation as a Qt list model and the panel that
shows it with a box to type a turn.

A turn has at most one row per side, keyed by (turn, side), and the rows are ordered by
turn, the user's above the model's, whatever order the pieces arrive in (hands-free, the
reply can start before the user's own transcript does). Pieces stream into their row
(grey italic while unsettled); `TurnClosed` settles both rows with the texts the
database stores. Rows wrap, never elide, and grow as their text does.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QSignalBlocker,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QPainter,
    QPainterPath,
    QPen,
    QResizeEvent,
    QStandardItem,
    QStandardItemModel,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from emodesk.conversation.api import Role, TurnOutcome

ROLE_TITLES = {Role.USER: "You", Role.MODEL: "Gemini"}
INTERRUPTED_NOTE = "— interrupted"
NOT_ANSWERED = "Not answered"
_SIDE_ORDER = {Role.USER: 0, Role.MODEL: 1}
_BACKGROUNDS = {Role.USER: QColor("#e6f6f4"), Role.MODEL: QColor("#fdf0e1")}
_FAILED_BACKGROUND = QColor("#fdecea")
_TITLE_COLOURS = {Role.USER: QColor("#1f7a70"), Role.MODEL: QColor("#a84f00")}
_SETTLED_TEXT = QColor("#1f2328")
_STREAMING_TEXT = QColor("#57606a")
_NOTE_COLOURS = {TurnOutcome.INTERRUPTED: QColor("#a84f00"), TurnOutcome.FAILED: QColor("#c0392b")}
_ModelIndex = QModelIndex | QPersistentModelIndex


@dataclass(slots=True)
class TranscriptEntry:
    role: Role
    turn: int
    text: str
    final: bool = False  # settled by the turn's TurnClosed
    outcome: TurnOutcome | None = None
    reason: str = ""

    @property
    def key(self) -> tuple[int, int]:
        return (self.turn, _SIDE_ORDER[self.role])

    @property
    def note(self) -> str:
        """What the row says about how its turn ended, below the text ("" if nothing)."""
        if self.role is not Role.MODEL:
            return ""
        if self.outcome is TurnOutcome.INTERRUPTED:
            return INTERRUPTED_NOTE
        if self.outcome is TurnOutcome.FAILED:
            return f"{NOT_ANSWERED}: {self.reason}" if self.reason else NOT_ANSWERED
        return ""

    @property
    def shown_text(self) -> str:
        """The row's text as shown and copied: the text, then the note, if any."""
        text, note = self.text.strip(), self.note
        if not note:
            return text
        if self.outcome is TurnOutcome.INTERRUPTED and text:
            return f"{text} {note}"
        return f"{text}\n{note}" if text else note


class TranscriptModel(QStandardItemModel):
    """One row per side per turn, ordered by (turn, user before model).

    `entries` is the transcript; each row's roles are kept in a QStandardItem, so that
    Qt reads them without calling Python. A list view asks every row its size on each
    layout, and a Python model answered that at about 17 us a row: 8 ms of the GUI
    thread per layout at 250 turns, for a layout per line a streamed reply grows by.
    The panel stores each row's measured size (`set_row_size`) the same way."""

    RoleRole = Qt.ItemDataRole.UserRole + 1  # the `Role`'s value: "user" / "model"
    TurnRole = Qt.ItemDataRole.UserRole + 2  # the turn number
    FinalRole = Qt.ItemDataRole.UserRole + 3  # settled by the turn's TurnClosed
    OutcomeRole = Qt.ItemDataRole.UserRole + 4  # "completed"/"interrupted"/"failed"; "" streaming
    ReasonRole = Qt.ItemDataRole.UserRole + 5  # why a failed turn failed
    TextRole = Qt.ItemDataRole.UserRole + 6  # the side's text alone (no title, no note)
    NoteRole = Qt.ItemDataRole.UserRole + 7  # "— interrupted", "Not answered: …" or ""
    PartsRole = Qt.ItemDataRole.UserRole + 8  # all the delegate draws (`_Parts`), at once

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.entries: list[TranscriptEntry] = []
        self._settled: set[int] = set()  # turns whose TurnClosed came: pieces are late

    def row_index(self, row: int) -> QModelIndex:
        return self.index(row, 0)

    def set_row_size(self, row: int, size: QSize) -> None:
        """The row's measured size, for the view (a change of it lays the view out)."""
        self.setData(self.index(row, 0), size, Qt.ItemDataRole.SizeHintRole)

    def _roles(self, entry: TranscriptEntry) -> dict[int, Any]:
        failed = entry.outcome is TurnOutcome.FAILED and entry.role is Role.MODEL
        if entry.outcome is None or entry.outcome is TurnOutcome.COMPLETED:
            tooltip = f"Turn {entry.turn}"
        else:
            tooltip = f"Turn {entry.turn} · {entry.outcome.value}"
        font = QFont()
        font.setItalic(not entry.final)
        R = Qt.ItemDataRole
        return {
            R.DisplayRole: f"{ROLE_TITLES[entry.role]}\n{entry.shown_text}",
            R.ToolTipRole: tooltip,
            R.BackgroundRole: QBrush(_FAILED_BACKGROUND if failed else _BACKGROUNDS[entry.role]),
            R.ForegroundRole: QBrush(_SETTLED_TEXT if entry.final else _STREAMING_TEXT),
            R.FontRole: font,
            self.RoleRole: entry.role.value,
            self.TurnRole: entry.turn,
            self.FinalRole: entry.final,
            self.OutcomeRole: entry.outcome.value if entry.outcome is not None else "",
            self.ReasonRole: entry.reason,
            self.TextRole: entry.text.strip(),
            self.NoteRole: entry.note,
            self.PartsRole: _Parts.of_entry(entry),
        }

    # ------------------------------------------------------------------ events
    def add_piece(self, role: Role | str, text: str, turn: int) -> None:
        """A streamed piece (`TranscriptLine`): appended to that side's text of the turn."""
        side = Role(role)
        if turn in self._settled:
            return  # the settled text is what was stored; a straggler changes nothing
        row = self._find(turn, side)
        if row is None:
            if not text.strip():
                return  # no row for nothing but blanks
            self._insert(TranscriptEntry(side, turn, text))
            return
        self.entries[row].text += text
        self._changed(row)

    def restart_reply(self, turn: int) -> None:
        """`ReplyRestarted`: the reply so far is void; a whole new one streams in."""
        if turn in self._settled:
            return
        row = self._find(turn, Role.MODEL)
        if row is not None:
            self._remove(row)

    def settle(
        self,
        turn: int,
        outcome: TurnOutcome | str,
        reason: str,
        user_text: str,
        model_text: str,
    ) -> None:
        """`TurnClosed`: both rows get the stored texts and their normal style. A side with
        no text has no row, except that a failed turn always says it was not answered."""
        outcome = TurnOutcome(outcome)
        self._settled.add(turn)
        self._settle_side(turn, Role.USER, user_text, outcome, reason, keep=False)
        failed = outcome is TurnOutcome.FAILED
        self._settle_side(turn, Role.MODEL, model_text, outcome, reason, keep=failed)

    def _settle_side(
        self, turn: int, side: Role, text: str, outcome: TurnOutcome, reason: str, keep: bool
    ) -> None:
        row = self._find(turn, side)
        if not text.strip() and not keep:
            if row is not None:
                self._remove(row)
            return
        entry = TranscriptEntry(side, turn, text, True, outcome, reason)
        if row is None:
            self._insert(entry)
        else:
            self.entries[row] = entry
            self._changed(row)

    def clear(self) -> None:
        self.entries.clear()
        self._settled.clear()
        super().clear()

    def plain_text(self) -> str:
        return "\n".join(f"{ROLE_TITLES[e.role]}: {e.shown_text}" for e in self.entries)

    # ------------------------------------------------------------------ rows
    def _find(self, turn: int, side: Role) -> int | None:
        key = (turn, _SIDE_ORDER[side])
        row = bisect_left(self.entries, key, key=lambda e: e.key)
        if row < len(self.entries) and self.entries[row].key == key:
            return row
        return None

    def _insert(self, entry: TranscriptEntry) -> None:
        row = bisect_left(self.entries, entry.key, key=lambda e: e.key)
        item = QStandardItem()
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        for role, value in self._roles(entry).items():
            item.setData(value, role)
        self.entries.insert(row, entry)
        self.insertRow(row, item)

    def _remove(self, row: int) -> None:
        del self.entries[row]
        self.removeRow(row)

    def _changed(self, row: int) -> None:
        self.setItemData(self.index(row, 0), self._roles(self.entries[row]))


# ====================================================================== drawing
PAD_X = 10  # inside a row's bubble
PAD_Y = 6
GAP = 2  # between title, text and note
RADIUS = 6.0
_WRAP = QTextOption()
_WRAP.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)


def wrapped_layout(text: str, font: QFont, width: float) -> tuple[QTextLayout, float]:
    """`text` laid out in lines no wider than `width` (words wrap; a word longer than the
    line breaks anywhere; nothing is elided), and the height of those lines."""
    layout = QTextLayout(text.replace("\n", "\u2028"), font)
    layout.setTextOption(_WRAP)
    layout.beginLayout()
    height = 0.0
    while True:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(max(1.0, width))
        line.setPosition(QPointF(0.0, height))
        height += line.height()
    layout.endLayout()
    return layout, height


@dataclass(frozen=True, slots=True)
class _Parts:
    title: str
    text: str
    note: str
    role: Role | None
    final: bool
    outcome: str

    @classmethod
    def of_entry(cls, entry: TranscriptEntry) -> _Parts:
        outcome = entry.outcome.value if entry.outcome is not None else ""
        title = ROLE_TITLES[entry.role]
        return cls(title, entry.text.strip(), entry.note, entry.role, entry.final, outcome)

    @classmethod
    def of(cls, index: _ModelIndex) -> _Parts:
        # One `data()` call per painted row, for everything the row draws.
        parts = index.data(TranscriptModel.PartsRole)
        return parts if isinstance(parts, _Parts) else cls("", "", "", None, False, "")


def _note_colour(outcome: str) -> QColor:
    return _NOTE_COLOURS.get(TurnOutcome(outcome), _STREAMING_TEXT) if outcome else _STREAMING_TEXT


_Blocks = list[tuple[QTextLayout, float, QColor]]
# Rows whose text stays laid out for painting: more than a tall window shows.
_LAID_OUT_ROWS = 64


class TranscriptDelegate(QStyledItemDelegate):
    """Draws a row as a bubble: the side's name, its whole text wrapped to the view's
    width, and how the turn ended. `measure` gives the size of that layout; the panel
    stores it in the model (Qt's own `sizeHint` reads it there, without Python).

    Paint draws text laid out once (the last `_LAID_OUT_ROWS` rows' layouts are kept):
    the GUI thread also reads the reply's audio off the socket, and a full repaint of a
    transcript of 12 rows took 3.0 ms laying every row out again, 1.9 ms without."""

    def __init__(self, view: QListView) -> None:
        super().__init__(view)
        self._view = view
        self._laid_out: OrderedDict[tuple[_Parts, float, str], _Blocks] = OrderedDict()

    def row_width(self) -> int:
        """A row's width: the viewport's, less the view's spacing on both sides."""
        return max(60, self._view.viewport().width() - 2 * self._view.spacing())

    def forget(self) -> None:
        self._laid_out.clear()

    def measure(self, font: QFont, parts: _Parts, width: int) -> QSize:
        """The size of a row `width` wide: all its text, wrapped, and the padding."""
        blocks = self.laid_out(font, parts, width - 2 * PAD_X)
        height = 2 * PAD_Y + sum(h for _, h, _ in blocks) + GAP * (len(blocks) - 1)
        return QSize(width, math.ceil(height))

    def laid_out(self, font: QFont, parts: _Parts, width: float) -> _Blocks:
        """`blocks`, kept for the rows laid out last."""
        key = (parts, width, font.key())
        blocks = self._laid_out.get(key)
        if blocks is None:
            blocks = self._laid_out[key] = self.blocks(font, parts, width)
            while len(self._laid_out) > _LAID_OUT_ROWS:
                self._laid_out.popitem(last=False)
        else:
            self._laid_out.move_to_end(key)
        return blocks

    @staticmethod
    def blocks(base: QFont, parts: _Parts, width: float) -> _Blocks:
        """The title, the text and the note, each laid out at `width`, with its height
        and colour, top to bottom."""
        title_font = QFont(base)
        title_font.setBold(True)
        title = wrapped_layout(parts.title, title_font, width)
        colour = _TITLE_COLOURS[parts.role] if parts.role is not None else _SETTLED_TEXT
        blocks = [(*title, colour)]
        if parts.text:
            body_font = QFont(base)
            body_font.setItalic(not parts.final)
            body = wrapped_layout(parts.text, body_font, width)
            blocks.append((*body, _SETTLED_TEXT if parts.final else _STREAMING_TEXT))
        if parts.note:
            note_font = QFont(base)
            note_font.setItalic(True)
            note = wrapped_layout(parts.note, note_font, width)
            blocks.append((*note, _note_colour(parts.outcome)))
        return blocks

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _ModelIndex) -> None:
        parts = _Parts.of(index)
        rect = QRectF(option.rect)
        background = index.data(Qt.ItemDataRole.BackgroundRole)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setClipRect(rect)
        path = QPainterPath()
        path.addRoundedRect(rect, RADIUS, RADIUS)
        painter.fillPath(path, background if isinstance(background, QBrush) else QBrush())
        y = rect.top() + PAD_Y
        font: QFont = option.font
        for layout, height, colour in self.laid_out(font, parts, rect.width() - 2 * PAD_X):
            painter.setPen(QPen(colour))
            layout.draw(painter, QPointF(rect.left() + PAD_X, y))
            y += height + GAP
        painter.restore()


class TranscriptView(QListView):
    """The list, saying when its rows' width or font changed (they are measured again).

    A row whose text changed is only repainted; the list is laid out again when a row's
    size changed (the panel stores it after measuring). QListView would lay out and
    repaint every visible row on any change: per streamed piece, about 1 ms of the GUI
    thread painting rows that did not change."""

    rows_need_measuring = Signal()

    def dataChanged(
        self, top_left: _ModelIndex, bottom_right: _ModelIndex, roles: Sequence[int] = ()
    ) -> None:
        if top_left == bottom_right and roles and Qt.ItemDataRole.SizeHintRole not in roles:
            self.viewport().update(self.visualRect(top_left))
            return
        super().dataChanged(top_left, bottom_right, list(roles))

    def resizeEvent(self, event: QResizeEvent) -> None:
        # The viewport's size: it also narrows when the scroll bar appears.
        if event.size().width() != event.oldSize().width():
            self.rows_need_measuring.emit()
        super().resizeEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.FontChange:
            self.rows_need_measuring.emit()
        super().changeEvent(event)


class TranscriptPanel(QWidget):
    text_submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = TranscriptModel(self)
        title = QLabel("Transcript")
        title.setObjectName("sectionTitle")
        self.view = TranscriptView()
        self.view.setObjectName("transcript")
        self.view.setModel(self.model)
        self.delegate = TranscriptDelegate(self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setWordWrap(True)
        self.view.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.view.setUniformItemSizes(False)
        self.view.setSpacing(3)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.verticalScrollBar().setSingleStep(20)
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

        # A row is measured when its text changes, every row when their width or the
        # font does; the sizes are kept in the model, and Qt lays the list out from them
        # without calling Python (at 500 rows, 0.2 ms a layout instead of 8).
        self._measure_all = QTimer(self)  # coalesces the resize events of a drag
        self._measure_all.setSingleShot(True)
        self._measure_all.setInterval(0)
        self._measure_all.timeout.connect(self.relayout)
        self.view.rows_need_measuring.connect(self._measure_all.start)
        self.model.rowsInserted.connect(self._on_rows_inserted)
        self.model.rowsRemoved.connect(self._on_rows_removed)
        self.model.dataChanged.connect(self._on_data_changed)
        self.model.modelReset.connect(self._on_reset)

    # ------------------------------------------------------------------ events
    def add_piece(self, role: Role | str, text: str, turn: int) -> None:
        self.model.add_piece(role, text, turn)

    def restart_reply(self, turn: int) -> None:
        self.model.restart_reply(turn)

    def settle(
        self, turn: int, outcome: TurnOutcome | str, reason: str, user_text: str, model_text: str
    ) -> None:
        self.model.settle(turn, outcome, reason, user_text, model_text)

    # ------------------------------------------------------------------ layout
    def relayout(self) -> None:
        """Measure every row again and lay the list out now (a resize does this)."""
        self._measure_all.stop()
        follow = self._at_bottom()
        with QSignalBlocker(self.model):  # one layout below, not one per row
            self._measure_rows(0, len(self.model.entries) - 1)
        self.view.doItemsLayout()
        self.view.viewport().update()
        self._shown(follow)

    def _measure_rows(self, first: int, last: int) -> None:
        font, width = self.view.font(), self.delegate.row_width()
        for row in range(first, last + 1):
            parts = _Parts.of_entry(self.model.entries[row])
            self.model.set_row_size(row, self.delegate.measure(font, parts, width))

    def _at_bottom(self) -> bool:
        # Read before Qt lays the change out: a reader scrolled up is not pulled down.
        bar = self.view.verticalScrollBar()
        return bar.value() >= bar.maximum() - 4

    def _shown(self, follow: bool) -> None:
        self.empty_hint.setVisible(not self.model.entries)
        if follow:
            self.view.scrollToBottom()

    def _on_rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        follow = self._at_bottom()
        self._measure_rows(first, last)
        self._shown(follow)

    def _on_rows_removed(self, *_args: object) -> None:
        self._shown(self._at_bottom())

    def _on_data_changed(
        self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Sequence[int] = ()
    ) -> None:
        if list(roles) == [Qt.ItemDataRole.SizeHintRole]:
            return  # the size measured below
        follow = self._at_bottom()
        self._measure_rows(top_left.row(), bottom_right.row())
        self._shown(follow)

    def _on_reset(self) -> None:
        self.delegate.forget()
        self._shown(True)

    def _submit(self) -> None:
        text = self.input.text().strip()
        if not text:
            return
        self.input.clear()
        self.text_submitted.emit(text)
