"""WAL checkpoints on a thread of their own.

A checkpoint copies the WAL back into the database file and syncs it: tens of
milliseconds on a busy disk. Left to SQLite's automatic checkpoint it runs inside
whichever commit crosses the threshold, which is a write on the asyncio loop. The loop's
connection therefore checkpoints only as a safety net (a large WAL), and this thread
does the regular ones; the sqlite3 module releases the GIL while SQLite works.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from emodesk.store.opening import connect

# Writes between background checkpoints (~2-3 WAL pages of 4 KiB each per write).
WRITES_PER_CHECKPOINT = 200
# The loop's connection checkpoints by itself only past this many WAL pages (~40 MB),
# should the background thread fall behind.
SAFETY_NET_PAGES = 10_000


class Checkpointer:
    def __init__(self, path: Path, writes_per_checkpoint: int = WRITES_PER_CHECKPOINT) -> None:
        self._path = path
        self._every = writes_per_checkpoint
        self._writes = 0
        self._wake = threading.Event()
        self._stopping = False
        self._done = threading.Condition()
        self._runs = 0
        self._thread = threading.Thread(target=self._run, name="emodesk-store-checkpoint")
        self._thread.daemon = True  # never holds the process open at exit
        self._thread.start()

    @property
    def runs(self) -> int:
        """Checkpoints attempted so far."""
        with self._done:
            return self._runs

    def wrote(self) -> None:
        """Count one committed write; every `writes_per_checkpoint` wakes the thread.
        Called with the store's lock held, so the counter needs no lock of its own."""
        self._writes += 1
        if self._writes >= self._every:
            self._writes = 0
            self._wake.set()

    def wait_for_runs(self, count: int, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self._runs >= count, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    if conn is None:
                        conn = connect(self._path)
                    # PASSIVE: copy what it can without waiting for the loop's writes.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass  # the loop's next write reports a real problem to the user
                with self._done:
                    self._runs += 1
                    self._done.notify_all()
        finally:
            if conn is not None:
                conn.close()
