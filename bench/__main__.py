"""Runs every `bench/bench_*.py` module's `main()` in turn, or those named on the command line."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def main(argv: list[str]) -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    unknown = [a for a in argv if not any(a in n for n in names)]
    if unknown:
        print(f"no benchmark matches {', '.join(unknown)}; choose from: {', '.join(names)}")
        return 2
    chosen = [n for n in names if not argv or any(a in n for a in argv)]
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
