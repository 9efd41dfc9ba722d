"""How a bench prints a figure measured over repeated runs: the median, the range and the
run count, and PASS/FAIL against its budget where it has one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("s") else "s")


def over_runs(
    label: str,
    values: Sequence[float],
    unit: str,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    budget_note: str = "",
    decimals: int = 1,
    of: str = "run",
) -> str:
    """`label: median X unit, range a-b unit (N runs)  budget: PASS|FAIL`; the verdict
    is on the median; `of` names what was repeated. Printed, and returned."""
    if not values:
        line = f"{label}: no runs gave a figure"
        print(line, flush=True)
        return line
    a = np.asarray(values, dtype=float)
    unit = f" {unit}" if unit else ""
    median = float(np.median(a))
    f = f"{{:.{decimals}f}}"
    line = (
        f"{label}: median {f.format(median)}{unit}, range {f.format(a.min())}-"
        f"{f.format(a.max())}{unit} ({a.size} {of if a.size == 1 else _plural(of)})"
    )
    if at_most is not None:
        verdict = "PASS" if median <= at_most else "FAIL"
        line += f"  budget <= {f.format(at_most)}{unit}{budget_note}: {verdict}"
    elif at_least is not None:
        verdict = "PASS" if median >= at_least else "FAIL"
        line += f"  budget >= {f.format(at_least)}{unit}{budget_note}: {verdict}"
    print(line, flush=True)
    return line


def _cpu_times(stat: str) -> tuple[int, int, int]:
    """(busy jiffies including stolen ones, stolen jiffies, all jiffies) from /proc/stat's
    `cpu` line."""
    fields = [int(x) for x in stat.split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy, steal, busy + idle + iowait


def _read_cpu_times(path: str) -> tuple[int, int, int] | None:
    try:
        with open(path) as f:
            return _cpu_times(f.read())
    except (OSError, ValueError):
        return None


class StolenTime:
    """How much of the CPU time this machine was busy its host gave to others instead
    (steal time, /proc/stat), since it was made: on a shared VM the figures were measured
    under that. None where the kernel does not say."""

    def __init__(self, path: str = "/proc/stat") -> None:
        self._path = path
        self._start = _read_cpu_times(path)

    def percent(self) -> float | None:
        now = _read_cpu_times(self._path)
        if self._start is None or now is None or now[0] <= self._start[0]:
            return None
        return round(100 * (now[1] - self._start[1]) / (now[0] - self._start[0]), 1)

    def label(self) -> str:
        p = self.percent()
        return "steal time unknown" if p is None else f"{p:.1f}% of busy CPU stolen by the host"


class MachineLoad:
    """The whole machine since it was made (/proc/stat): `busy`, the % of all its CPUs'
    time busy (stolen time included); `steal`, the % of that busy time the host took."""

    def __init__(self, path: str = "/proc/stat") -> None:
        self._path = path
        self._start = _read_cpu_times(path)

    def percent(self) -> dict[str, float] | None:
        now = _read_cpu_times(self._path)
        if self._start is None or now is None or now[2] <= self._start[2]:
            return None
        busy, steal, total = (b - a for a, b in zip(self._start, now, strict=True))
        return {
            "busy": round(100 * busy / total, 1),
            "steal": round(100 * steal / busy, 1) if busy else 0.0,
        }
