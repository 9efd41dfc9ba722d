"""`emodesk report [--day YYYY-MM-DD | --days N] --out FILE.html|FILE.pdf [--db PATH]`:
the daily or weekly report from the history, with its charts, as HTML or PDF.

Without --day or --days: today. --days N: the N days ending today. Days are local
calendar days. Qt draws the charts and typesets the PDF on an offscreen platform when
no display is set, so this runs on a server too.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import TextIO

from emodesk.core.history import period


def chosen_period(args: argparse.Namespace, today: date | None = None) -> tuple[date, date]:
    today = today or date.today()
    if args.day is not None:
        return args.day, args.day
    return period(today, args.days or 1)


def _gui_application() -> object:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.instance() or QGuiApplication(["emodesk report"])


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from emodesk.store import NotAHistory, SessionStore, StoreError, default_history_path

    target = Path(args.out)
    if target.suffix.lower() not in (".html", ".htm", ".pdf"):
        print(f"emodesk report: --out must end in .html or .pdf: {target}", file=err)
        return 2
    if args.days is not None and not 1 <= args.days <= 3660:
        print(f"emodesk report: --days must be 1 to 3660, not {args.days}", file=err)
        return 2
    db = Path(args.db) if args.db else default_history_path()
    if args.db and not db.exists():
        print(f"emodesk report: no history at {db}", file=err)
        return 2
    first, last = chosen_period(args)
    app = _gui_application()
    from emodesk.ui.report import gather_report, write_report

    try:
        store = SessionStore(db, named_by_user=bool(args.db), redactor=None)
    except (NotAHistory, StoreError) as exc:
        print(f"emodesk report: {exc}", file=err)
        return 2
    try:
        report = gather_report(store, first, last)
    except StoreError as exc:
        print(f"emodesk report: {exc}", file=err)
        return 1
    finally:
        store.close()
    try:
        write_report(report, target)
    except OSError as exc:
        print(f"emodesk report: {exc}", file=err)
        return 1
    del app
    print(
        f"{report.title}: {len(report.sessions)} session(s), {report.readings} estimate(s)"
        f" -> {target}",
        file=out,
    )
    return 0
