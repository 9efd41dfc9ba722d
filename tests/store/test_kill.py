"""A kill -9 in the middle of a session leaves a history that opens normally with every
reading the writer had been told was saved."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from emodesk.store import SessionStore

REPO = Path(__file__).resolve().parents[2]
LINE_TIMEOUT_S = 30.0

# Writes readings (and transcript lines) as fast as it can and reports each reading's
# turn on stdout only after `add_reading` has returned.
_WRITER = textwrap.dedent(
    """
    import sys
    from emodesk.store import SessionStore
    from tests.store.factories import make_entry, make_meta

    store = SessionStore(sys.argv[1])
    meta = make_meta()
    store.start_session(meta)
    print("session", meta.session_id, flush=True)
    turn = 0
    while True:
        store.add_reading(meta.session_id, make_entry(turn))
        print(turn, flush=True)
        store.add_transcript(meta.session_id, turn, "user", "words " * 30)
        turn += 1
    """
)


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line.strip())
    lines.put(None)


def test_kill_9_loses_no_reported_reading(history_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(history_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(writer.stdout, lines), daemon=True)
    pump.start()
    try:
        header = lines.get(timeout=LINE_TIMEOUT_S)
        assert header is not None and header.startswith("session "), writer.stderr
        session_id = header.removeprefix("session ")
        reported: list[int] = []
        while len(reported) < 400:
            line = lines.get(timeout=LINE_TIMEOUT_S)
            assert line is not None, "the writer stopped on its own"
            reported.append(int(line))
        os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait(timeout=LINE_TIMEOUT_S) == -signal.SIGKILL
        # Lines the writer printed before it died are still in the pipe.
        while (line := lines.get(timeout=LINE_TIMEOUT_S)) is not None:
            reported.append(int(line))
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=LINE_TIMEOUT_S)
        assert writer.stdout is not None and writer.stderr is not None
        pump.join(timeout=LINE_TIMEOUT_S)
        writer.stdout.close()
        writer.stderr.close()

    assert reported == list(range(len(reported)))
    with SessionStore(history_path) as store:
        assert store.open_report.recovered_from is None
        turns = [entry.reading.turn for entry in store.readings(session_id)]
        # Every reported reading is there; at most one more was committed but not yet
        # reported when the signal landed.
        assert turns[: len(reported)] == reported
        assert len(turns) - len(reported) in (0, 1)
        transcript_turns = [turn for turn, _, _ in store.transcript(session_id)]
        assert transcript_turns == list(range(len(transcript_turns)))
        assert len(transcript_turns) >= len(reported) - 1
