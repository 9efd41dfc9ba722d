"""Keeping the app's files private: emotion readings, transcripts, settings and the log
are personal (health-adjacent) data, readable by their owner only.

Two halves: a process-wide umask (set once at start by the command line) makes every
file the process creates 0600 and every folder 0700, whoever creates it (sqlite's WAL and
SHM files, Qt's settings file, the log handler, exports); `make_private` tightens what an
older version left group- or world-readable in the app's own folders. Standard library
only; the callers say which folders are the app's.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

# Nobody but the owner may read, write or enter what the process creates.
PRIVATE_UMASK = 0o077
_OTHERS = 0o077


def use_private_umask() -> int:
    """Make files this process creates 0600 and folders 0700; returns the old umask."""
    return os.umask(PRIVATE_UMASK)


def _tighten(path: Path, mode: int) -> bool:
    if not mode & _OTHERS:
        return False
    os.chmod(path, stat.S_IMODE(mode) & ~_OTHERS)
    return True


def make_private(folders: Iterable[Path]) -> list[Path]:
    """Take group and other permissions away from each existing folder in `folders` and
    from everything inside it; returns what was changed.

    Only the folders given and what they hold: symbolic links are neither followed nor
    changed, so nothing outside them is touched. A folder that does not exist is
    skipped; one that cannot be changed (not the owner's) is left as it is."""
    changed: list[Path] = []
    for folder in folders:
        try:
            mode = folder.stat().st_mode
        except OSError:
            continue
        if not stat.S_ISDIR(mode):
            continue
        try:
            if _tighten(folder, mode):
                changed.append(folder)
        except OSError:
            continue
        for root, dirs, files in os.walk(folder, followlinks=False):
            for name in (*dirs, *files):
                path = Path(root, name)
                try:
                    entry_mode = path.lstat().st_mode
                    if not stat.S_ISLNK(entry_mode) and _tighten(path, entry_mode):
                        changed.append(path)
                except OSError:
                    continue
    return changed
