"""The settings dialog's rows are generated from the declarations in
`emodesk.core.settings`: each declared row on its page, in order, with its label, value,
choices or range, and read back as the value the parser accepts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QSpinBox, QWidget

from emodesk.core.profiles import PROFILES
from emodesk.core.settings import SETTINGS, AppSettings, Page, Widget, parse_settings
from emodesk.ui.services import Services
from emodesk.ui.settings_dialog import SettingsDialog, make_field

PROFILE_TITLES = [(key, p.title) for key, p in PROFILES.items()]


@pytest.fixture
def dialog(qtbot: Any) -> Iterator[SettingsDialog]:
    made = SettingsDialog(AppSettings().to_mapping(), PROFILE_TITLES, Services())
    qtbot.addWidget(made)
    yield made
    made.close()


def form_rows(dialog: SettingsDialog, page: Page) -> list[tuple[str, QWidget]]:
    """(label, field widget) of the rows on `page` that hold one widget."""
    index = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())].index(page.value)
    layout = dialog.tabs.widget(index).layout()
    assert isinstance(layout, QFormLayout)
    rows = []
    for row in range(layout.rowCount()):
        label = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
        field = layout.itemAt(row, QFormLayout.ItemRole.FieldRole)
        if label is None or field is None or field.widget() is None:
            continue
        text = label.widget()
        assert isinstance(text, QLabel)
        rows.append((text.text(), field.widget()))
    return rows


def test_the_tabs_are_the_declared_pages_in_order(dialog: SettingsDialog) -> None:
    tabs = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert tabs == [page.value for page in Page] == ["Conversation", "Audio", "API key", "Privacy"]


@pytest.mark.parametrize("page", list(Page))
def test_the_rows_of_a_page_are_its_declared_settings(dialog: SettingsDialog, page: Page) -> None:
    declared = [(s.key, s.row.label) for s in SETTINGS if s.row is not None and s.row.page is page]
    labels = {label for _, label in declared}
    shown = [(label, w) for label, w in form_rows(dialog, page) if label in labels]
    assert [label for label, _ in shown] == [label for _, label in declared]
    assert [w for _, w in shown] == [dialog.fields[key].widget for key, _ in declared]


def test_the_dialog_reads_back_what_it_was_given(dialog: SettingsDialog) -> None:
    shown = {s.key for s in SETTINGS if s.row is not None}
    assert set(dialog.values()) == shown
    assert dialog.values() == {key: getattr(AppSettings(), key) for key in shown}


def test_chosen_values_come_back_as_settings_the_parser_accepts(qtbot: Any) -> None:
    chosen = AppSettings(
        model="gemini-2.5-flash-native-audio-preview-12-2025", language="Deutsch",
        profile="tutor", push_to_talk_key="F8", vad_sensitivity="low", vad_silence_ms=900,
        input_device="USB Mic", output_device="Headphones", playout_buffer_ms=40,
        echo_mode="full_duplex_aec", frame_ms=40, noise_gate=True, normalize=True,
        retention_days=0,
    )  # fmt: skip
    dialog = SettingsDialog(chosen.to_mapping(), PROFILE_TITLES, Services())
    qtbot.addWidget(dialog)
    values = dialog.values()
    assert parse_settings(values) == (
        AppSettings(**{k: v for k, v in chosen.to_mapping().items() if k in values}),
        (),
    )
    # A saved device that is not listed (yet) stays the choice, under its own name.
    assert dialog.input_device.currentText() == "USB Mic"
    assert dialog.retention_days.text() == "Only the current session"


def test_widgets_take_their_choices_and_ranges_from_the_declarations(
    dialog: SettingsDialog,
) -> None:
    for setting in SETTINGS:
        if setting.row is None:
            continue
        widget = dialog.fields[setting.key].widget
        if setting.row.widget is Widget.NUMBER:
            assert isinstance(widget, QSpinBox)
            assert (widget.minimum(), widget.maximum()) == setting.bounds
            assert widget.suffix() == setting.row.suffix
        elif setting.row.widget is Widget.CHOICE and setting.key != "profile":
            assert isinstance(widget, QComboBox)
            items = [(widget.itemData(i), widget.itemText(i)) for i in range(widget.count())]
            assert items == list(setting.options)
        elif setting.row.widget is Widget.CHECK:
            assert isinstance(widget, QCheckBox) and widget.text() == setting.row.text
        assert widget.toolTip() == setting.row.tooltip
    profiles = dialog.profile
    assert [profiles.itemData(i) for i in range(profiles.count())] == list(PROFILES)


def test_a_text_left_empty_or_a_key_left_unset_is_the_default(qtbot: Any) -> None:
    by_key = {s.key: s for s in SETTINGS}
    language = make_field(by_key["language"], "  ")
    key = make_field(by_key["push_to_talk_key"], "")
    qtbot.addWidget(language.widget)
    qtbot.addWidget(key.widget)
    assert language.value() == "English" and key.value() == "Space"


def test_runtime_options_replace_the_declared_ones(qtbot: Any) -> None:
    dialog = SettingsDialog(
        AppSettings().to_mapping(), [("general", "Everyday")], Services(models=("m1", "m2"))
    )
    qtbot.addWidget(dialog)
    assert [dialog.model.itemText(i) for i in range(dialog.model.count())] == [
        "m1", "m2", AppSettings().model,
    ]  # fmt: skip
    assert dialog.model.isEditable()
    assert [dialog.profile.itemText(i) for i in range(dialog.profile.count())] == ["Everyday"]
