"""Opening the history file: connect, check, migrate, and set aside a file that cannot be
used (damaged, newer schema, not ours) so the app starts with a fresh one instead of
failing at every start.

A file the user named (`--db PATH`) is never moved: if it cannot be used it is refused
with `NotAHistory`, its bytes and name as they were. The checks only read; the file is
switched to WAL and migrated once they have passed."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

from emodesk.store.errors import NotAHistory, OpenReport, StoreError, is_damage, store_error
from emodesk.store.schema import SCHEMA_VERSION, migrate, user_version

# How long a write waits for another connection's transaction (a bulk delete on an
# executor thread) before giving up with a StoreError.
BUSY_TIMEOUT_S = 5.0
# The first 16 bytes of every SQLite 3 database (https://sqlite.org/fileformat.html).
SQLITE_MAGIC = b"SQLite format 3\x00"


class _Unusable(Exception):
    """The file is intact enough to keep but cannot serve as this version's history."""

    def __init__(self, tag: str, reason: str, refusal: str) -> None:
        super().__init__(reason)
        self.tag = tag
        self.reason = reason  # why it was set aside: "it was damaged"
        self.refusal = refusal  # why a file the user named is refused: "is damaged"


def _damaged() -> _Unusable:
    return _Unusable(
        "damaged", "it was damaged", "is not a usable EmoDesk history (the database is damaged)"
    )


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the store's settings.

    WAL: each commit appends to the -wal file, readers do not block the writer.
    synchronous=NORMAL: in WAL mode a commit is in the OS's hands once `execute` returns,
    so a killed or crashed process loses nothing committed; only a power cut or an OS
    crash can lose the commits since the last checkpoint (the file stays consistent).
    FULL would fsync every reading, milliseconds on the asyncio loop for no gain
    against the failures a desktop app actually meets.
    """
    conn = _connect_plain(path)
    try:
        _configure(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_plain(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    # Deleted rows are overwritten, not just unlinked: "delete" means gone.
    conn.execute("PRAGMA secure_delete = ON")


def _check(conn: sqlite3.Connection) -> None:
    """Raise _Unusable for a file this version must not write into. Reads only."""
    version = user_version(conn)  # the first read of the header: random bytes fail here
    if version > SCHEMA_VERSION:
        newer = (
            f"written by a newer EmoDesk (history format {version}, "
            f"this version reads up to {SCHEMA_VERSION})"
        )
        raise _Unusable(f"newer-v{version}", f"it was {newer}", f"was {newer}")
    if version == 0:
        foreign = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if foreign:
            raise _Unusable(
                "foreign",
                "it is not an EmoDesk history file",
                "is not an EmoDesk history (an SQLite database of another program)",
            )
    verdict = [row[0] for row in conn.execute("PRAGMA quick_check")]
    if verdict != ["ok"]:
        raise _damaged()


def _open_checked(path: Path) -> sqlite3.Connection:
    conn = _connect_plain(path)
    try:
        # Checked before anything is written (WAL mode, migrations), so a file that
        # is refused is left as it was.
        _check(conn)
        _configure(conn)
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_damage(exc):
            raise _damaged() from exc
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def _refuse_unless_sqlite(path: Path) -> None:
    """A file the user named that holds something else (notes, audio) is not opened:
    SQLite would at best fail on it, at worst be asked to start a database over it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return  # a new history is created there
    except OSError as exc:
        raise store_error(exc, "opening it", path) from exc
    if stat.S_ISDIR(mode):
        what = "a folder"
    elif not stat.S_ISREG(mode):
        what = "not a regular file"  # a FIFO or a device: reading it could block forever
    else:
        try:
            with path.open("rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise store_error(exc, "opening it", path) from exc
        if not head or head == SQLITE_MAGIC:  # an empty file is an empty database to SQLite
            return
        what = "not an SQLite database"
    raise NotAHistory(f"{path} is not an EmoDesk history ({what}); nothing was changed")


def _kept_name(path: Path, tag: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for counter in range(1000):
        suffix = "" if counter == 0 else f"-{counter}"
        candidate = path.with_name(f"{path.stem}.{tag}-{stamp}{suffix}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise StoreError(f"Too many kept copies of the history beside {path}; remove some.")


def kept_copies(path: Path) -> list[Path]:
    """Copies set aside by earlier opens of `path`, with their -wal files."""
    return sorted(path.parent.glob(f"{path.stem}.*-*{path.suffix}*"))


def _set_aside(path: Path, tag: str) -> Path:
    """Move the file (and its WAL, which holds its latest commits) to a kept name."""
    kept = _kept_name(path, tag)
    try:
        os.replace(path, kept)
        wal = Path(f"{path}-wal")
        if wal.exists():
            os.replace(wal, Path(f"{kept}-wal"))
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}-shm").unlink()  # an index of the WAL, rebuilt on demand
    except OSError as exc:
        raise store_error(exc, "setting aside an unusable history file", path) from exc
    return kept


def open_history(
    path: Path, *, named_by_user: bool = False
) -> tuple[sqlite3.Connection, OpenReport]:
    """Open (creating if needed) and migrate the history at `path`.

    A damaged, newer-schema or foreign file is moved aside and a fresh one started; the
    report says so. A file `named_by_user` is never moved: one that cannot be used
    raises NotAHistory and is left as it was. Anything else (no permission, disk full,
    the fresh file failing too) raises StoreError: one attempt, never a loop.
    """
    if named_by_user:
        _refuse_unless_sqlite(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise store_error(exc, "creating its folder", path) from exc
    try:
        try:
            return _open_checked(path), OpenReport(path, None, "")
        except _Unusable as problem:
            if named_by_user:
                raise NotAHistory(f"{path} {problem.refusal}; nothing was changed") from None
            kept = _set_aside(path, problem.tag)
            conn = _open_checked(path)
            message = (
                f"The history file could not be used because {problem.reason}. "
                f"It was kept as {kept.name} and a new one was started."
            )
            return conn, OpenReport(path, kept, message)
    except _Unusable as problem:
        raise StoreError(
            f"The history at {path} could not be started fresh: {problem.reason}."
        ) from problem
    except (sqlite3.Error, OSError) as exc:
        raise store_error(exc, "opening it", path) from exc
