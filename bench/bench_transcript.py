"""The transcript panel's GUI-thread time per streamed piece as the session grows.

A reply's transcription arrives in pieces (a word or two each); every piece edits one row
of the panel's list. The GUI thread also hands events to the Live session's thread and
paints the waveform, so its time per piece should not grow with the session. Per run: a
fresh panel (offscreen, 420 x 700) filled with N settled turns (two rows each), then a
100-word reply streamed in two-word pieces, each piece followed by the events it posts
(the layout Qt schedules among them); the figure is that time per piece (wall clock,
median over the pieces), and the whole reply's. 3 runs per session length.
"""

from __future__ import annotations

import os
import statistics
import time

from bench.figures import over_runs

RUNS = 3
SESSION_TURNS = (20, 250, 500)
REPLY_WORDS = 100
SENTENCE = "I would like to know how the weather will be tomorrow in the afternoon, please."


def one_run(turns: int) -> tuple[float, float]:
    """(median ms per piece, ms for the whole reply) after `turns` settled turns."""
    from PySide6.QtWidgets import QApplication

    from emodesk.conversation.api import Role, TurnOutcome
    from emodesk.ui.transcript import TranscriptPanel

    app = QApplication.instance() or QApplication([])
    panel = TranscriptPanel()
    panel.resize(420, 700)
    panel.show()
    for turn in range(1, turns + 1):
        panel.settle(turn, TurnOutcome.COMPLETED, "", SENTENCE, SENTENCE)
    panel.relayout()
    app.processEvents()
    words = ("word" + str(i % 7) for i in range(REPLY_WORDS))
    pieces = [" ".join(pair) + " " for pair in zip(words, words, strict=False)]
    per_piece: list[float] = []
    for piece in pieces:
        t0 = time.perf_counter()
        panel.add_piece(Role.MODEL, piece, turns + 1)
        app.processEvents()
        per_piece.append((time.perf_counter() - t0) * 1000)
    # The relayout timer's own pass, once the reply is in.
    t0 = time.perf_counter()
    panel.relayout()
    app.processEvents()
    whole = sum(per_piece) + (time.perf_counter() - t0) * 1000
    panel.close()
    panel.deleteLater()
    app.processEvents()
    return statistics.median(per_piece), whole


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    print(
        f"transcript panel, a {REPLY_WORDS}-word reply streamed in 2-word pieces after N "
        f"settled turns, {RUNS} runs each (offscreen, GUI thread wall time):",
        flush=True,
    )
    for turns in SESSION_TURNS:
        runs = [one_run(turns) for _ in range(RUNS)]
        over_runs(
            f"  {turns} turns: per piece (median of the reply's)",
            [p for p, _ in runs],
            "ms",
            decimals=2,
        )
        over_runs(f"  {turns} turns: the whole reply", [w for _, w in runs], "ms")
