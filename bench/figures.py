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
