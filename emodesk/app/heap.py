"""Process memory housekeeping for the desktop app: few malloc arenas, and the start-up's
objects kept out of the garbage collector's sight.

Arenas. glibc's malloc gives threads arenas of their own, up to 8 per core (16 here).
The app's threads come and go (a PortAudio callback thread per opened stream, executor
workers, the canceller's priming thread) and each leaves freed blocks among live ones in
whichever arena it used; the hour's soak grew its RSS by 28 MB with the memory in use
flat. The growth was in the threads' arenas (64 MB-aligned heaps, 5-12 MB each, each
growing), not in Python's heap, and `malloc_trim(0)` after every turn did not bring it
back (a 16-minute soak with it grew as fast). Two arenas let freed blocks be reused.
It must be set before the threads start: `limit_malloc_arenas()` comes first in `run`.

The collector. A full collection walks every tracked object; after start-up there are
about 157,000 (Qt, pyqtgraph, google-genai's pydantic models), and one took 55 ms of the
GUI thread, which also reads the reply's audio off the socket. `gc.freeze()` moves them
to a permanent generation once they are built, before the conversation stack is: that
one is rebuilt on settings changes, and what is frozen is never collected, even in a
cycle (with it frozen too, two resamplers were still alive at the hour's soak's end).

Elsewhere than glibc (musl, macOS, Windows) there is no `mallopt` and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX does); False where there is no
    glibc, it refused, or MALLOC_ARENA_MAX is set (the user's choice stands)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


def freeze_startup_objects() -> int:
    """Collect once, then leave everything alive now out of later collections (it lives
    as long as the app); returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
