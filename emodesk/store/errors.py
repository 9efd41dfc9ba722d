"""What the store tells its callers: a typed error with a message for the UI, and what
happened when the history file was opened."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path


class StoreError(Exception):
    """The history could not be read or written. `str(error)` is a sentence for the UI."""


class NotAHistory(StoreError):
    """A file the user named cannot serve as the history (not SQLite, another program's
    database, a newer format, damaged); it was left as it was."""


class SessionNotFound(StoreError):
    """No session with that id is in the history (never started, or deleted)."""


@dataclass(frozen=True)
class OpenReport:
    """What happened when the history file was opened.

    `recovered_from` is the kept copy of a damaged or newer-schema file that was moved
    aside for a fresh one; `message` then says so in a sentence. Both are empty/None when
    the file opened normally.
    """

    path: Path
    recovered_from: Path | None
    message: str


# Primary SQLite result codes (https://sqlite.org/rescode.html); the extended code's low
# byte is the primary one.
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

DAMAGE_CODES = frozenset({_SQLITE_CORRUPT, _SQLITE_NOTADB})


def primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_damage(exc: sqlite3.Error) -> bool:
    """The file itself is broken (not a database, malformed), as opposed to the disk or
    the permissions refusing a write."""
    return primary_code(exc) in DAMAGE_CODES


def store_error(exc: sqlite3.Error | OSError, action: str, path: Path) -> StoreError:
    """Translate a sqlite3 or OS error met while `action` (e.g. "saving a reading") into
    a StoreError whose message says what went wrong and where."""
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return StoreError(f"The history at {path} could not be used while {action}: {reason}.")
    code = primary_code(exc)
    if code == _SQLITE_FULL:
        reason = "the disk is full"
    elif code in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN):
        reason = "the file or its folder cannot be written (check permissions and free space)"
    elif code in DAMAGE_CODES:
        reason = "the file is damaged; it will be set aside and a new one started next time"
    elif code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        reason = "another program holds the file locked"
    elif code == _SQLITE_IOERR:
        reason = "the disk reported an error (it may be full or removed)"
    else:
        reason = str(exc)
    return StoreError(f"The history at {path} could not be used while {action}: {reason}.")
