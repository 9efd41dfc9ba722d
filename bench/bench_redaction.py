"""Transcript redaction on the synthetic test set (bench/redaction_corpus.py, seed 14):
recall per kind and overall, the false-positive rate on lines without personal data, the
misses and false hits, and the time per line (it runs off the loop, on the store's
writes)."""

from __future__ import annotations

import time

from bench.redaction_corpus import NAMES_SETTING, corpus, score
from emodesk.store.redaction import Redactor, names_from_setting


def main() -> None:
    lines = corpus()
    redactor = Redactor(names_from_setting(NAMES_SETTING))
    redactor.redact("warm up +44 20 7946 0958")
    started = time.perf_counter()
    result = score(redactor.redact, lines)
    per_line_ms = (time.perf_counter() - started) * 1000 / len(lines)
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
    print(f"time per line: {per_line_ms:.2f} ms")
    for miss in result.misses:
        print(f"  missed {miss}")
    for hit in result.false_hits:
        print(f"  false hit {hit}")


if __name__ == "__main__":
    main()
