"""The transcript tells the truth: one row per side per turn, in turn order, streamed
text that wraps and grows, and each turn settled to what the database stores."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem

from emodesk.conversation.api import (
    Notice,
    NoticeKind,
    ReplyRestarted,
    Role,
    TranscriptLine,
    TurnClosed,
    TurnOutcome,
)
from emodesk.ui.main_window import MainWindow
from emodesk.ui.transcript import (
    GAP,
    PAD_X,
    PAD_Y,
    TranscriptModel,
    TranscriptPanel,
    _Parts,
    wrapped_layout,
)

USER, MODEL = Role.USER, Role.MODEL
M = TranscriptModel
LONG_REPLY = (
    "Sure. The first thing to check is whether the router has power and the lights on the "
    "front are steady rather than blinking; then unplug it for thirty seconds, plug it back "
    "in, wait for the internet light, and try the page again. If that does not help, the "
    "next step is to look at the cable between the wall socket and the router, which is "
    "often the culprit when the connection drops every few minutes."
)


def rows(model: TranscriptModel) -> list[tuple[int, str, str, bool]]:
    """(turn, side, text, settled) of each row, top to bottom."""
    return [
        (
            model.data(model.row_index(row), M.TurnRole),
            model.data(model.row_index(row), M.RoleRole),
            model.data(model.row_index(row), M.TextRole),
            model.data(model.row_index(row), M.FinalRole),
        )
        for row in range(model.rowCount())
    ]


def stream(model: TranscriptModel | TranscriptPanel, role: Role, text: str, turn: int) -> None:
    """`text` as the live service sends it: a few words per piece."""
    words = text.split(" ")
    for start in range(0, len(words), 3):
        piece = " ".join(words[start : start + 3])
        model.add_piece(role, piece if start == 0 else " " + piece, turn)


@pytest.fixture
def panel(qtbot: Any) -> TranscriptPanel:
    widget = TranscriptPanel()
    qtbot.addWidget(widget)
    widget.resize(300, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


# ====================================================================== the model
def test_a_typed_turn_shows_once(qapp: object) -> None:
    model = TranscriptModel()
    model.add_piece(USER, "What is the weather like?", 1)  # the typed text, echoed
    stream(model, MODEL, "It is sunny.", 1)
    model.settle(1, TurnOutcome.COMPLETED, "", "What is the weather like?", "It is sunny.")
    assert rows(model) == [
        (1, "user", "What is the weather like?", True),
        (1, "model", "It is sunny.", True),
    ]
    assert model.plain_text().count("What is the weather like?") == 1


def test_the_user_row_stays_above_the_reply_when_the_reply_streams_first(qapp: object) -> None:
    model = TranscriptModel()
    model.add_piece(MODEL, "Of course", 1)  # hands-free: the input transcription lags
    model.add_piece(USER, "Can you", 1)
    model.add_piece(MODEL, ", here it is.", 1)
    model.add_piece(USER, " help me?", 1)
    assert rows(model) == [
        (1, "user", "Can you help me?", False),
        (1, "model", "Of course, here it is.", False),
    ]


def test_turns_stay_in_order_after_a_barge_in(qapp: object) -> None:
    model = TranscriptModel()
    model.add_piece(USER, "Tell me a story", 1)
    model.add_piece(MODEL, "Once upon a time", 1)
    # The user speaks over the reply: the next reply starts before turn 1 closes and
    # before the user's words of turn 2 are transcribed.
    model.add_piece(MODEL, "Sure, a shorter one", 2)
    model.settle(1, TurnOutcome.INTERRUPTED, "", "Tell me a story", "Once upon a time")
    model.add_piece(USER, "Make it short", 2)
    model.settle(2, TurnOutcome.COMPLETED, "", "Make it short", "Sure, a shorter one.")
    assert [(turn, side) for turn, side, _, _ in rows(model)] == [
        (1, "user"),
        (1, "model"),
        (2, "user"),
        (2, "model"),
    ]
    assert model.plain_text() == (
        "You: Tell me a story\n"
        "Gemini: Once upon a time — interrupted\n"
        "You: Make it short\n"
        "Gemini: Sure, a shorter one."
    )


def test_a_restarted_reply_drops_the_partial_text(qapp: object) -> None:
    model = TranscriptModel()
    model.add_piece(USER, "How far is the moon?", 1)
    model.add_piece(MODEL, "About three hundred", 1)
    model.restart_reply(1)
    assert rows(model) == [(1, "user", "How far is the moon?", False)]
    stream(model, MODEL, "About 384,000 km on average.", 1)
    assert "three hundred" not in model.plain_text()
    assert rows(model)[1] == (1, "model", "About 384,000 km on average.", False)
    model.settle(1, "completed", "", "How far is the moon?", "About 384,000 km on average.")
    assert model.plain_text().count("384,000") == 1


def test_an_interrupted_reply_is_marked(qapp: object) -> None:
    model = TranscriptModel()
    stream(model, USER, "Explain quantum computing", 1)
    stream(model, MODEL, "Quantum computers use qubits, which can be", 1)
    model.settle(1, TurnOutcome.INTERRUPTED, "", "Explain quantum computing", "Quantum computers")
    reply = model.row_index(1)
    assert model.data(reply, M.OutcomeRole) == "interrupted"
    assert model.data(reply, M.TextRole) == "Quantum computers"  # only what was played
    assert model.data(reply) == "Gemini\nQuantum computers — interrupted"
    assert "interrupted" in model.data(reply, Qt.ItemDataRole.ToolTipRole)
    # The user's side of the turn is not marked.
    assert model.data(model.row_index(0), M.NoteRole) == ""
    assert model.data(model.row_index(0)) == "You\nExplain quantum computing"


def test_a_failed_turn_stays_visible_with_its_reason(qapp: object) -> None:
    model = TranscriptModel()
    model.add_piece(USER, "What time is it", 1)
    model.add_piece(MODEL, "It is", 1)
    model.settle(1, TurnOutcome.FAILED, "the connection was lost", "What time is it", "")
    assert [(turn, side, final) for turn, side, _, final in rows(model)] == [
        (1, "user", True),
        (1, "model", True),
    ]
    reply = model.row_index(1)
    assert model.data(reply, M.OutcomeRole) == "failed"
    assert model.data(reply, M.ReasonRole) == "the connection was lost"
    assert model.data(reply) == "Gemini\nNot answered: the connection was lost"
    assert "It is" not in model.plain_text()
    # A failed turn with nothing heard still has its row.
    model.settle(2, TurnOutcome.FAILED, "the service refused the audio", "", "")
    assert rows(model)[2:] == [(2, "model", "", True)]
    assert model.plain_text().endswith("Gemini: Not answered: the service refused the audio")


def test_settling_replaces_the_streamed_text_and_drops_empty_sides(qapp: object) -> None:
    model = TranscriptModel()
    model.add_piece(USER, "hello  wrld ", 1)
    model.add_piece(MODEL, "Hi! How can", 1)
    model.settle(1, TurnOutcome.COMPLETED, "", "Hello world", "Hi! How can I help?")
    assert rows(model) == [
        (1, "user", "Hello world", True),
        (1, "model", "Hi! How can I help?", True),
    ]
    # The user barged in before any of the reply was played: the stored reply is empty,
    # so is the row; a half utterance transcribed as nothing has no row either.
    model.add_piece(USER, "uh", 2)
    model.add_piece(MODEL, "Well", 2)
    model.settle(2, TurnOutcome.INTERRUPTED, "", "", "")
    assert [turn for turn, *_ in rows(model)] == [1, 1]
    # Empty settled texts never create rows.
    model.settle(3, TurnOutcome.COMPLETED, "", "", "  ")
    assert model.rowCount() == 2


def test_a_piece_after_the_turn_closed_changes_nothing(qapp: object) -> None:
    model = TranscriptModel()
    model.settle(1, TurnOutcome.COMPLETED, "", "Hi", "Hello.")
    model.add_piece(MODEL, " Anything else?", 1)
    model.add_piece(USER, " there", 1)
    model.restart_reply(1)
    assert rows(model) == [(1, "user", "Hi", True), (1, "model", "Hello.", True)]
    # A new session starts numbering again.
    model.clear()
    model.add_piece(USER, "Again", 1)
    assert rows(model) == [(1, "user", "Again", False)]


def test_rows_are_italic_until_their_turn_closes(qapp: object) -> None:
    model = TranscriptModel()
    model.add_piece(USER, "I was going to", 1)  # hands-free: half an utterance
    model.add_piece(MODEL, "Go on", 1)
    for row in range(2):
        index = model.row_index(row)
        assert model.data(index, M.FinalRole) is False
        assert model.data(index, Qt.ItemDataRole.FontRole).italic()
        assert model.data(index, M.OutcomeRole) == ""
    streaming = model.data(model.row_index(0), Qt.ItemDataRole.ForegroundRole).color()
    model.settle(1, TurnOutcome.COMPLETED, "", "I was going to", "Go on.")
    for row in range(2):
        index = model.row_index(row)
        assert model.data(index, M.FinalRole) is True
        assert not model.data(index, Qt.ItemDataRole.FontRole).italic()
        assert model.data(index, Qt.ItemDataRole.ForegroundRole).color() != streaming


def test_no_empty_row_for_a_blank_first_piece(qapp: object) -> None:
    model = TranscriptModel()
    model.add_piece(MODEL, "  ", 1)
    assert model.rowCount() == 0
    model.add_piece(MODEL, "Hello", 1)
    model.add_piece(MODEL, " there", 1)
    assert rows(model) == [(1, "model", "Hello there", False)]


# ====================================================================== the panel
def text_height(panel: TranscriptPanel, text: str, italic: bool) -> int:
    """The wrapped text's own height at the row's inner width, by QFontMetrics."""
    font = QFont(panel.view.font())
    font.setItalic(italic)
    inner = panel.delegate.row_width() - 2 * PAD_X
    flags = Qt.TextFlag.TextWordWrap | Qt.TextFlag.TextWrapAnywhere
    return QFontMetrics(font).boundingRect(QRect(0, 0, inner, 100_000), flags, text).height()


def row_height(panel: TranscriptPanel, row: int, qtbot: Any) -> int:
    qtbot.waitUntil(lambda: not panel._measure_all.isActive(), timeout=2000)
    return panel.view.visualRect(panel.model.row_index(row)).height()


def test_a_long_reply_wraps_and_its_row_grows_as_it_streams(
    panel: TranscriptPanel, qtbot: Any
) -> None:
    panel.add_piece(USER, "My internet keeps dropping, what should I do?", 1)
    words = LONG_REPLY.split(" ")
    heights = []
    for start in range(0, len(words), 5):
        piece = " ".join(words[start : start + 5])
        panel.add_piece(MODEL, piece if start == 0 else " " + piece, 1)
        if start % 20 == 0:
            heights.append(row_height(panel, 1, qtbot))
    heights.append(row_height(panel, 1, qtbot))
    assert heights == sorted(heights) and heights[-1] > 3 * heights[0]
    reply = panel.model.row_index(1)
    assert panel.model.data(reply) == f"Gemini\n{LONG_REPLY}"
    assert "…" not in panel.model.data(reply)
    assert panel.view.textElideMode() == Qt.TextElideMode.ElideNone
    # The row is as tall as the whole wrapped text needs (plus the title and padding),
    # so nothing is cut off at the bottom.
    option = QStyleOptionViewItem()
    option.font = panel.view.font()
    hint = panel.delegate.sizeHint(option, reply)
    needed = text_height(panel, LONG_REPLY, italic=True)
    assert hint.height() >= needed + 2 * PAD_Y + GAP
    assert panel.view.visualRect(reply).height() == hint.height()
    assert panel.view.visualRect(reply).width() <= panel.view.viewport().width()
    # The text's layout at that width fits the row exactly, line for line.
    body_font = QFont(panel.view.font())
    body_font.setItalic(True)
    layout, body = wrapped_layout(LONG_REPLY, body_font, hint.width() - 2 * PAD_X)
    assert layout.lineCount() > 5
    assert all(
        layout.lineAt(i).naturalTextWidth() <= hint.width() for i in range(layout.lineCount())
    )
    assert body <= hint.height() - 2 * PAD_Y
    # Settled (not italic any more) it is measured again.
    panel.settle(1, TurnOutcome.COMPLETED, "", "My internet keeps dropping?", LONG_REPLY)
    assert row_height(panel, 1, qtbot) >= text_height(panel, LONG_REPLY, italic=False)


def test_rows_are_measured_again_when_the_view_is_resized(
    panel: TranscriptPanel, qtbot: Any
) -> None:
    panel.settle(1, TurnOutcome.COMPLETED, "", "Why?", LONG_REPLY)
    narrow = row_height(panel, 1, qtbot)
    panel.resize(700, 600)
    qtbot.waitUntil(lambda: panel.view.visualRect(panel.model.row_index(1)).height() < narrow)
    wide = panel.view.visualRect(panel.model.row_index(1))
    assert wide.width() > 600


def test_streaming_measures_only_the_changed_rows_and_follows_the_newest(
    panel: TranscriptPanel, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for turn in range(1, 101):
        panel.settle(turn, TurnOutcome.COMPLETED, "", f"Question {turn}", f"Answer {turn}.")
    panel.relayout()
    measured: list[tuple[str, str]] = []
    real_measure = panel.delegate.measure

    def counting_measure(font: QFont, parts: Any, width: int) -> Any:
        measured.append((parts.role, parts.text))
        return real_measure(font, parts, width)

    monkeypatch.setattr(panel.delegate, "measure", counting_measure)
    question = "And one more question about the answers above"
    stream(panel, USER, question, 101)
    stream(panel, MODEL, LONG_REPLY, 101)  # some 25 pieces in one go
    pieces = -(-len(question.split(" ")) // 3) + -(-len(LONG_REPLY.split(" ")) // 3)
    qtbot.wait(1)  # what the pieces posted (Qt's layout)
    # The 200 settled rows were not measured again: each piece measured its own row once.
    assert {role for role, _ in measured} == {"user", "model"}
    assert len(measured) == pieces
    assert measured[-1] == ("model", LONG_REPLY)
    # The newest row is in sight, as tall as it was measured.
    reply = panel.model.row_index(panel.model.rowCount() - 1)
    last = panel.view.visualRect(reply)
    assert panel.view.viewport().rect().intersects(last)
    width = panel.delegate.row_width()
    assert last.height() == real_measure(panel.view.font(), _Parts.of(reply), width).height()


def test_laying_out_a_long_transcript_runs_no_python_per_row(
    panel: TranscriptPanel, qtbot: Any
) -> None:
    """A list view asks every row its size at each layout, and Qt lays the list out
    again whenever a streamed reply grows by a line. Asked of Python, that cost grows
    with the session (8 ms of the GUI thread per layout at 250 turns); the sizes are in
    the model's C++ items instead, measured once per change of a row."""
    for turn in range(1, 201):
        panel.settle(turn, TurnOutcome.COMPLETED, "", f"Question {turn}", f"Answer {turn}.")
    panel.add_piece(MODEL, "Well", 201)
    panel.relayout()
    reply = panel.model.row_index(panel.model.rowCount() - 1)
    one_line = panel.view.visualRect(reply).height()
    calls: list[str] = []

    def count(frame: Any, event: str, _arg: Any) -> None:
        if event == "call":
            calls.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename})")

    sys.setprofile(count)
    try:
        panel.view.doItemsLayout()
    finally:
        sys.setprofile(None)
    assert len(calls) < 20, calls[:20]  # not per row (401 rows)
    # A piece that wraps the row onto more lines grows it, at once.
    panel.add_piece(MODEL, " " + LONG_REPLY, 201)
    grown = panel.view.visualRect(reply).height()
    assert grown > one_line
    width = panel.delegate.row_width()
    assert grown == panel.delegate.measure(panel.view.font(), _Parts.of(reply), width).height()


def test_a_piece_that_keeps_its_rows_height_repaints_that_row_alone(
    panel: TranscriptPanel, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QListView repaints every visible row on any change of a row; a streamed piece
    that leaves its row's height as it was repaints only its row."""
    for turn in range(1, 21):
        panel.settle(turn, TurnOutcome.COMPLETED, "", f"Question {turn}", f"Answer {turn}.")
    panel.add_piece(MODEL, "Well", 21)
    panel.relayout()
    reply = panel.model.row_index(panel.model.rowCount() - 1)
    one_line = panel.view.visualRect(reply).height()
    painted: list[int] = []
    real_paint = panel.delegate.paint

    def counting_paint(painter: Any, option: Any, index: Any) -> None:
        painted.append(index.row())
        real_paint(painter, option, index)

    monkeypatch.setattr(panel.delegate, "paint", counting_paint)

    def nothing_left_to_paint() -> bool:  # from showing the panel and laying it out
        painted.clear()
        QApplication.processEvents()
        return not painted

    qtbot.waitUntil(nothing_left_to_paint, timeout=2000)
    for word in (" then", " let", " us", " see"):
        panel.add_piece(MODEL, word, 21)
        qtbot.waitUntil(lambda: bool(painted), timeout=2000)  # the row's repaint
        assert set(painted) == {reply.row()}, painted
        painted.clear()
    assert panel.view.visualRect(reply).height() == one_line
    # A piece that wraps the row onto a new line lays the list out and repaints it.
    panel.add_piece(MODEL, " " + LONG_REPLY, 21)
    qtbot.waitUntil(lambda: len(set(painted)) > 1, timeout=2000)
    assert panel.view.visualRect(reply).height() > one_line


def test_a_reader_scrolled_up_is_not_pulled_down_by_new_text(
    panel: TranscriptPanel, qtbot: Any
) -> None:
    for turn in range(1, 21):
        panel.settle(turn, TurnOutcome.COMPLETED, "", f"Question {turn}", LONG_REPLY)
    panel.relayout()
    bar = panel.view.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == bar.maximum()  # following the newest
    bar.setValue(0)
    stream(panel, MODEL, "More and more words arrive", 21)
    qtbot.wait(1)  # what the pieces posted (Qt's layout)
    assert bar.value() == 0
    bar.setValue(bar.maximum())
    panel.add_piece(MODEL, " and the view follows again", 21)
    qtbot.waitUntil(lambda: bar.value() == bar.maximum())
    last = panel.view.visualRect(panel.model.row_index(panel.model.rowCount() - 1))
    assert panel.view.viewport().rect().contains(last.bottomLeft())


def test_the_window_routes_transcript_events_and_a_failed_turn_notice(
    window: MainWindow, qtbot: Any
) -> None:
    model = window.transcript.model
    for event in (
        TranscriptLine(MODEL, "Partial", 1),
        TranscriptLine(USER, "Hello", 1),
        ReplyRestarted(1),
        TranscriptLine(MODEL, "Hi there", 1),
        TurnClosed(1, TurnOutcome.COMPLETED, "", "Hello", "Hi there."),
        TranscriptLine(USER, "And then", 2),
        TurnClosed(2, TurnOutcome.FAILED, "no reply in 30 s", "And then", ""),
        Notice(NoticeKind.TURN_FAILED, "no reply in 30 s"),
    ):
        window.on_event(event)
    assert model.plain_text() == (
        "You: Hello\nGemini: Hi there.\nYou: And then\nGemini: Not answered: no reply in 30 s"
    )
    # Passing news in the status bar, not a banner to dismiss.
    assert "no reply in 30 s" in window.statusBar().currentMessage()
    assert NoticeKind.TURN_FAILED not in window.banners.banners
    assert not window.banners.banners


def test_a_row_read_directly_is_the_row_its_data_roles_give(qapp: object) -> None:
    """The delegate reads a row to paint in one `data()` call: from the model or through
    a proxy, it is the row the separate roles describe."""
    from PySide6.QtCore import QIdentityProxyModel

    model = TranscriptModel()
    model.add_piece(USER, " still streaming ", 1)
    model.add_piece(USER, "Hello there", 2)
    model.add_piece(MODEL, "Hi", 2)
    model.settle(2, TurnOutcome.INTERRUPTED, "", "Hello there", "Hi")
    model.settle(3, TurnOutcome.FAILED, "the connection dropped", "Are you there?", "")
    proxy = QIdentityProxyModel()
    proxy.setSourceModel(model)
    assert model.rowCount() == 5
    for row in range(model.rowCount()):
        direct = _Parts.of(model.row_index(row))
        assert direct == _Parts.of(proxy.index(row, 0))
    assert [
        (p.title, p.text, p.note, p.final, p.outcome)
        for p in map(_Parts.of, map(model.row_index, range(5)))
    ] == [
        ("You", "still streaming", "", False, ""),
        ("You", "Hello there", "", True, "interrupted"),
        ("Gemini", "Hi", "— interrupted", True, "interrupted"),
        ("You", "Are you there?", "", True, "failed"),
        ("Gemini", "", "Not answered: the connection dropped", True, "failed"),
    ]
