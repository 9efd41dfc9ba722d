"""Opening the history file: connect, check, migrate, and set aside a file that cannot be
used (damaged, newer schema, not ours) so the app starts with a fresh one instead of
failing at every start."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from emodesk.store.errors import OpenReport, StoreError, is_damage, store_error
from emodesk.store.schema import SCHEMA_VERSION, migrate, user_version

# How long a write waits for another connection's transaction (a bulk delete on an
# executor thread) before giving up with a StoreError.
BUSY_TIMEOUT_S = 5.0


class _Unusable(Exception):
    """The file is intact enough to keep but cannot serve as this version's history."""

    def __init__(self, tag: str, reason: str) -> None:
        super().__init__(reason)
        self.tag = tag
        self.reason = reason


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the store's settings.

    WAL: each commit appends to the -wal file, readers do not block the writer.
    synchronous=NORMAL: in WAL mode a commit is in the OS's hands once `execute` returns,
    so a killed or crashed process loses nothing committed; only a power cut or an OS
    crash can lose the commits since the last checkpoint (the file stays consistent).
    FULL would fsync every reading, milliseconds on the asyncio loop for no gain
    against the failures a desktop app actually meets.
    """
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Deleted rows are overwritten, not just unlinked: "delete" means gone.
        conn.execute("PRAGMA secure_delete = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _check(conn: sqlite3.Connection) -> None:
    """Raise _Unusable for a file this version must not write into."""
    try:
        version = user_version(conn)
        if version > SCHEMA_VERSION:
            raise _Unusable(
                f"newer-v{version}",
                f"it was written by a newer EmoDesk (history format {version}, "
                f"this version reads up to {SCHEMA_VERSION})",
            )
        if version == 0:
            foreign = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if foreign:
                raise _Unusable("foreign", "it is not an EmoDesk history file")
        verdict = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if verdict != ["ok"]:
            raise _Unusable("damaged", "it was damaged")
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise _Unusable("damaged", "it was damaged") from exc
        raise


def _open_checked(path: Path) -> sqlite3.Connection:
    try:
        conn = connect(path)
    except sqlite3.DatabaseError as exc:
        # journal_mode=WAL is the first read of the header: random bytes fail here.
        if is_damage(exc):
            raise _Unusable("damaged", "it was damaged") from exc
        raise
    try:
        _check(conn)
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


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


def open_history(path: Path) -> tuple[sqlite3.Connection, OpenReport]:
    """Open (creating if needed) and migrate the history at `path`.

    A damaged, newer-schema or foreign file is moved aside and a fresh one started; the
    report says so. Anything else (no permission, disk full, the fresh file failing too)
    raises StoreError: one attempt, never a loop.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise store_error(exc, "creating its folder", path) from exc
    try:
        try:
            return _open_checked(path), OpenReport(path, None, "")
        except _Unusable as problem:
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
