"""A knowledge folder chosen in Settings, through the real composition root and window
(offline demo, scripted sound card): the folder picker, the rebuilt stack declaring
`search_knowledge_base`, an answer cited from the folder, and the index kept in the
app's data folder, not in the user's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog

from emodesk.core.settings import KNOWLEDGE_DIR
from emodesk.core.tools import SEARCH_KNOWLEDGE_BASE
from emodesk.ui.main_window import MainWindow
from emodesk.ui.settings_dialog import FolderPicker
from tests.support.app_rig import Rig, start_rig, stop_rig

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def rig(
    window: MainWindow,
    qloop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Rig]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    started = start_rig(window, qloop, tmp_path / "history.db")
    try:
        yield started
    finally:
        stop_rig(started)


def test_the_folder_picker_fills_in_the_chosen_folder(qtbot: Any, tmp_path: Path) -> None:
    picker = FolderPicker("", "Choose the knowledge base folder")
    qtbot.addWidget(picker)
    dialog = picker.choose()
    assert isinstance(dialog, QFileDialog) and dialog.fileMode() is QFileDialog.FileMode.Directory
    dialog.fileSelected.emit(str(tmp_path))
    assert picker.line.text() == str(tmp_path)


def test_a_knowledge_folder_chosen_in_settings_answers_the_support_profile(
    rig: Rig, tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "refunds.md").write_text("# Refunds\n\nPaid within 14 days.\n", encoding="utf-8")
    window, backend = rig.window, rig.backend
    rig.connect()
    dialog = window.open_settings()
    picker = dialog.fields[KNOWLEDGE_DIR.key].widget
    assert isinstance(picker, FolderPicker)
    picker.line.setText(str(kb))
    dialog.profile.setCurrentIndex(dialog.profile.findData("support"))
    rig.in_loop(dialog._apply)
    rig.settle(lambda: backend.folders is not None and window.state.value == "ready")
    rig.settle(lambda: SEARCH_KNOWLEDGE_BASE in str(rig.emulator.connections[-1].setup))
    assert window.settings.knowledge_dir == str(kb)

    rig.in_loop(lambda: window.send_text("Search for refund days"))
    rig.settle(lambda: any(t.completed for t in rig.emulator.connections[-1].turns))
    reply = [t for t in rig.emulator.connections[-1].turns if t.completed][-1].reply_text
    assert reply.endswith("(from refunds.md).")
    assert sorted(p.name for p in kb.iterdir()) == ["refunds.md"]
    assert list((tmp_path / "data" / "emodesk" / "knowledge").glob("*.sqlite3"))
