"""Process memory housekeeping (`emodesk.app.heap`)."""

from __future__ import annotations

import gc
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from emodesk.app import heap

GLIBC = platform.libc_ver()[0] == "glibc"

# Threads that each allocate and free, as the app's come and go; how many arenas the
# process ends with shows in malloc_info's <heap nr=...> entries.
_ARENAS = """
import ctypes, re, sys, tempfile, threading
sys.path.insert(0, {root!r})
from emodesk.app import heap
if {limit}:
    assert heap.limit_malloc_arenas()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
barrier = threading.Barrier(12)
def work():
    barrier.wait()  # all alive at once, so none can take over another's arena
    blocks = [libc.malloc(4096) for _ in range(200)]
    barrier.wait()
    for b in blocks:
        libc.free(b)
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
with tempfile.NamedTemporaryFile() as f:
    out = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, out)
    libc.fclose(out)
    print(len(re.findall(r'<heap nr="', open(f.name).read())))
"""


@pytest.mark.skipif(not GLIBC, reason="the C library is not glibc")
@pytest.mark.parametrize(("limit", "most"), [(True, 2), (False, None)])
def test_threads_share_two_arenas_once_limited(limit: bool, most: int | None) -> None:
    root = str(Path(__file__).resolve().parents[2])
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_ARENA_MAX from outside
    out = subprocess.run(
        [sys.executable, "-c", _ARENAS.format(root=root, limit=limit)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout  # fmt: skip
    arenas = int(out.strip())
    if most is not None:
        assert arenas <= most
    else:  # unlimited, twelve busy threads spread over more: the limit is what held it
        assert arenas > 2


def test_startup_objects_are_frozen_out_of_collections() -> None:
    kept = [[i] for i in range(5000)]  # containers alive at start-up: tracked by gc
    try:
        frozen = heap.freeze_startup_objects()
        assert frozen == gc.get_freeze_count() > len(kept)
        # A collection walks only what came after: the frozen are in no generation.
        walked = {id(o) for o in gc.get_objects()}
        assert not any(id(x) in walked for x in kept)
        later = [0]
        assert any(o is later for o in gc.get_objects())
    finally:
        gc.unfreeze()


def test_an_arena_count_the_user_set_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert heap.limit_malloc_arenas() is False
