"""Screenshots of the History window and of a report page, for the README.

A history file in a temporary folder gets nine days of sessions written through the real
store (tests/support/history_days.py: the last three days end persistent negative, one
day is quiet); the History window shows it with the newest session chosen, at 1200x800,
and the weekly report is written as PDF and its first page rendered by pdftoppm.
Writes docs/screenshots/history-1200x800.png and report-page.png. Offscreen, or under
Xvfb: `xvfb-run -a python -m bench.screenshot_history`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

OUT = Path(
    os.environ.get("EMODESK_SCREENSHOT_DIR") or Path(__file__).parents[1] / "docs/screenshots"
)


def main() -> int:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from emodesk.core.history import period
    from emodesk.store import SessionStore
    from emodesk.ui.history import HistoryWindow
    from emodesk.ui.report import gather_report, write_report
    from tests.support.history_days import fill_history

    app = QApplication.instance() or QApplication(sys.argv[:1])
    OUT.mkdir(parents=True, exist_ok=True)
    today = date.today()
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore(Path(tmp) / "history.sqlite3")
        try:
            ids = fill_history(store, today, days=12, skip=(3, 8))
            window = HistoryWindow(store, today=lambda: today)
            window.resize(1200, 800)
            window.show()
            window.show_days(30)
            window.select_session(ids[-1])
            for _ in range(20):
                app.processEvents()
            shot = OUT / "history-1200x800.png"
            window.grab().save(str(shot))
            print(f"wrote {shot}")
            window.close()
            pdf = Path(tmp) / "report.pdf"
            write_report(gather_report(store, *period(today, 7)), pdf)
            shutil.copy(pdf, Path(tmp) / "keep.pdf")
            subprocess.run(
                ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                 str(OUT / "report-page")],
                check=True,
            )  # fmt: skip
            print(f"wrote {OUT / 'report-page.png'}")
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
