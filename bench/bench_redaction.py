"""Transcript redaction on the synthetic test set (bench/redaction_corpus.py, seed 14):
recall per kind and overall, the false-positive rate on lines without personal data, the
misses and false hits, and the time per line (it runs off the loop, on the store's
writes): the median and range over TIMED_PASSES passes over the whole set, with the load
average beside it (design.md sets no budget for it)."""

from __future__ import annotations

import os
import statistics
import time

from bench.redaction_corpus import NAMES_SETTING, corpus, score
from emodesk.store.redaction import Redactor, names_from_setting

TIMED_PASSES = 5


def main() -> None:
    lines = corpus()
    redactor = Redactor(names_from_setting(NAMES_SETTING))
    redactor.redact("warm up +44 20 7946 0958")
    result = score(redactor.redact, lines)
    per_line_ms: list[float] = []
    for _ in range(TIMED_PASSES):
        started = time.perf_counter()
        for line in lines:
            redactor.redact(line.text)
        per_line_ms.append((time.perf_counter() - started) * 1000 / len(lines))
    positives = sum(1 for line in lines if line.items)
    print(f"test set: {positives} lines with personal data, {result.negatives} without")
    for kind, total in result.total.items():
        found = result.found[kind]
        print(f"  {kind:<8} recall {found}/{total} = {found / max(1, total):.1%}")
    items = sum(result.total.values())
    print(f"recall: {sum(result.found.values())}/{items} = {result.recall:.1%}")
    print(
        f"false positives: {result.false_positives}/{result.negatives} lines"
        f" = {result.false_positive_rate:.1%}"
    )
    print(
        f"time per line, {len(per_line_ms)} passes over the {len(lines)} lines: median "
        f"{statistics.median(per_line_ms):.2f} ms, range {min(per_line_ms):.2f}-"
        f"{max(per_line_ms):.2f} ms (load average {os.getloadavg()[0]:.1f}; no budget set)"
    )
    for miss in result.misses:
        print(f"  missed {miss}")
    for hit in result.false_hits:
        print(f"  false hit {hit}")


if __name__ == "__main__":
    main()
