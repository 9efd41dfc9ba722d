"""The export menu and what it opens: the timeline of this or a past session as CSV or
JSON (a file dialog, then the controller writes it), and the session report. Its message
box also says why an export could not be written."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QStatusBar, QToolButton, QWidget

from emodesk.conversation.api import ControllerProtocol
from emodesk.core.export import unwritable_reason
from emodesk.ui.services import Services
from emodesk.ui.window.dialogs import replace_dialog, use_qt_dialogs

FORMATS = ("csv", "json")
HANDOFF = "handoff"  # not a timeline format: offered by the support escalation
PAST_SESSIONS_SHOWN = 20


class ExportHost(Protocol):
    """What the export menu uses of the window."""

    @property
    def controller(self) -> ControllerProtocol | None: ...

    @property
    def session_id(self) -> str | None: ...

    @property
    def services(self) -> Services: ...

    def window(self, /) -> QWidget: ...

    def statusBar(self, /) -> QStatusBar: ...

    def run_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...


class ExportMenu:
    """`button` is the toolbar's Export button with its menu. `dialog` and `message_box`
    are the last ones shown (kept after they close, so they can be read)."""

    def __init__(self, host: ExportHost) -> None:
        self.host = host
        self.dialog: QFileDialog | None = None
        self.message_box: QMessageBox | None = None
        self.button = QToolButton()
        self.button.setText("Export")
        self.button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self.button)
        self.csv_action = self.menu.addAction("Export timeline as CSV…")
        self.csv_action.triggered.connect(lambda: self.open_dialog("csv"))
        self.json_action = self.menu.addAction("Export timeline as JSON…")
        self.json_action.triggered.connect(lambda: self.open_dialog("json"))
        self.report_action = self.menu.addAction("Session report…")
        self.report_action.triggered.connect(self.show_report)
        self.past_sessions_menu = self.menu.addMenu("Export a past session")
        self.past_sessions_menu.aboutToShow.connect(self._fill_past_sessions)
        self.button.setMenu(self.menu)

    def open_dialog(self, fmt: str = "csv", session_id: str | None = None) -> QFileDialog:
        """Asks where to write the timeline of `session_id` (this session's by default)."""
        target = session_id or self.host.session_id or "session"
        title, name, suffix = f"Export timeline as {fmt.upper()}", "emodesk", fmt
        if fmt == HANDOFF:  # this session for a human agent (emodesk.core.handoff)
            title, name, suffix = "Export for a human agent", "emodesk-handoff", "json"
        dialog = QFileDialog(self.host.window(), title)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, use_qt_dialogs())
        dialog.setNameFilter("CSV files (*.csv)" if suffix == "csv" else "JSON files (*.json)")
        dialog.setDefaultSuffix(suffix)
        dialog.setDirectory(str(Path.home()))
        dialog.selectFile(f"{name}-{target[:12]}.{suffix}")
        dialog.fileSelected.connect(lambda path: self.export_to(path, fmt, session_id))
        self.dialog = replace_dialog(self.dialog, dialog)
        dialog.open()
        return dialog

    def export_to(self, path: str, fmt: str, session_id: str | None = None) -> asyncio.Task[Any]:
        return self.host.run_task(self._export(path, fmt, session_id))

    async def _export(self, path: str, fmt: str, session_id: str | None) -> bool:
        problem = unwritable_reason(path)
        if problem:
            self.show_message("Cannot export", f"Cannot write {path}: {problem}.")
            return False
        controller = self.host.controller
        if controller is None:
            return False
        ok = await controller.export(path, fmt, session_id)
        if ok:
            what = "Handoff for a human agent written" if fmt == HANDOFF else "Timeline exported"
            self.host.statusBar().showMessage(f"{what} to {path}", 6000)
        return ok

    def export_failed(self, reason: str) -> None:
        """The controller refused an export: why, in a message box."""
        self.show_message("Export failed", reason)

    def _fill_past_sessions(self) -> None:
        menu = self.past_sessions_menu
        menu.clear()
        sessions = list(self.host.services.list_sessions())
        if not sessions:
            menu.addAction("No past sessions").setEnabled(False)
        for session_id, label in sessions[:PAST_SESSIONS_SHOWN]:
            sub = menu.addMenu(label)
            for fmt in FORMATS:
                action = sub.addAction(f"as {fmt.upper()}…")
                action.triggered.connect(
                    lambda _=False, s=session_id, f=fmt: self.open_dialog(f, s)
                )

    def show_report(self) -> None:
        """This session's summary (counts, trend, escalations: no transcript) in a dialog
        the user can copy from."""
        controller = self.host.controller
        report = controller.session_report() if controller is not None else None
        info = QMessageBox.Icon.Information
        if report is None:
            self.show_message("Session report", "No session yet.", info)
        else:
            self.show_message("Session report", report, info, selectable=True)

    def show_message(
        self,
        title: str,
        text: str,
        icon: QMessageBox.Icon = QMessageBox.Icon.Warning,
        selectable: bool = False,
    ) -> None:
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self.host.window())
        if selectable:
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_box = replace_dialog(self.message_box, box)
        box.open()
