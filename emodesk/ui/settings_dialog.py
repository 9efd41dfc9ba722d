"""The settings dialog. Its rows are generated from the settings' declarations
(`emodesk.core.settings.SETTINGS`): each declared row becomes a widget of its declared
kind on its declared page, with its default, choices or range from the declaration; the
dialog adds what is not a setting (the level meter, the device list's status, the API
key, "delete all data"). It edits a plain dict of values (the window maps it onto the
app's settings dataclass) and reaches the outside only through `Services`: plain
callables the composition root fills in (keyring, device lists, a level preview), so the
ui never imports the audio or live layers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QKeySequenceEdit,
    QLabel,
    QLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from emodesk.core.settings import (
    ECHO_MODE,
    FRAME_MS,
    INPUT_DEVICE,
    LANGUAGE,
    MODEL,
    NOISE_GATE,
    NORMALIZE,
    OUTPUT_DEVICE,
    PLAYOUT_BUFFER_MS,
    PROFILE,
    PUSH_TO_TALK_KEY,
    RETENTION_DAYS,
    SETTINGS,
    VAD_SENSITIVITY,
    VAD_SILENCE_MS,
    Page,
    Setting,
    Widget,
)
from emodesk.ui import theme
from emodesk.ui.scope import LevelMeter, SampleSource, dbfs
from emodesk.ui.services import DeviceChoice, DeviceList, KeyringProblem, Services
from emodesk.ui.window.dialogs import replace_dialog, use_qt_dialogs

log = logging.getLogger(__name__)

W = TypeVar("W", bound=QWidget)
Options = Sequence[tuple[Any, str]]  # (value, title)

SYSTEM_DEFAULT = "System default"
LOADING_DEVICES = "Loading devices…"


@dataclass(frozen=True)
class Field:
    """A generated row's widget, and how to read its value back."""

    widget: QWidget
    value: Callable[[], object]


def _combo(items: Options, current: Any) -> QComboBox:
    box = QComboBox()
    for value, title in items:
        box.addItem(title, value)
    index = box.findData(current)
    if index < 0 and current:
        box.addItem(current, current)
        index = box.count() - 1
    box.setCurrentIndex(max(0, index))
    return box


def _text_field(setting: Setting[Any], value: object, _options: Options) -> Field:
    line = QLineEdit(str(value))
    return Field(line, lambda: line.text().strip() or setting.default)


def _model_field(_setting: Setting[Any], value: object, options: Options) -> Field:
    box = _combo(options, value)
    box.setEditable(True)
    return Field(box, lambda: box.currentText().strip())


def _choice_field(setting: Setting[Any], value: object, options: Options) -> Field:
    box = _combo(options or setting.options, value)
    return Field(box, box.currentData)


def _number_field(setting: Setting[Any], value: object, _options: Options) -> Field:
    row = setting.row
    assert row is not None and setting.bounds is not None, setting.key
    box = QSpinBox()
    box.setRange(*setting.bounds)
    box.setSingleStep(row.step)
    box.setSuffix(row.suffix)
    box.setSpecialValueText(row.lowest_text)
    # After the range, or it is clamped to 0..99.
    box.setValue(value if isinstance(value, int) else setting.default)
    return Field(box, box.value)


def _check_field(setting: Setting[Any], value: object, _options: Options) -> Field:
    assert setting.row is not None
    box = QCheckBox(setting.row.text)
    box.setChecked(bool(value))
    return Field(box, box.isChecked)


def _key_field(setting: Setting[Any], value: object, _options: Options) -> Field:
    edit = QKeySequenceEdit(QKeySequence(str(value)))
    edit.setMaximumSequenceLength(1)
    return Field(edit, lambda: edit.keySequence().toString() or setting.default)


def _device_field(_setting: Setting[Any], value: object, _options: Options) -> Field:
    # Only the saved choice at first: the device lists arrive later (`load_devices`).
    box = _combo([("", SYSTEM_DEFAULT)], str(value or ""))
    return Field(box, lambda: box.currentData() or "")


class FolderPicker(QWidget):
    """A folder's path, typed or chosen with "Choose…" (a folder dialog); empty: none."""

    def __init__(self, path: str, title: str) -> None:
        super().__init__()
        self.title = title
        self.line = QLineEdit(path)
        self.line.setPlaceholderText("None")
        self.line.setClearButtonEnabled(True)
        self.button = QPushButton("Choose…")
        self.button.clicked.connect(self.choose)
        self.dialog: QFileDialog | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.line, 1)
        row.addWidget(self.button)

    def choose(self) -> QFileDialog:
        dialog = QFileDialog(self.window(), self.title)
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, use_qt_dialogs())
        if self.line.text().strip():
            dialog.setDirectory(self.line.text().strip())
        dialog.fileSelected.connect(self.line.setText)
        self.dialog = replace_dialog(self.dialog, dialog)
        dialog.open()
        return dialog


def _folder_field(setting: Setting[Any], value: object, _options: Options) -> Field:
    assert setting.row is not None
    picker = FolderPicker(str(value or ""), f"Choose the {setting.name}")
    return Field(picker, lambda: picker.line.text().strip())


# The widget made for each declared kind: (setting, current value, options) -> Field.
FIELD_MAKERS: Mapping[Widget, Callable[[Setting[Any], object, Options], Field]] = {
    Widget.TEXT: _text_field,
    Widget.MODEL: _model_field,
    Widget.CHOICE: _choice_field,
    Widget.NUMBER: _number_field,
    Widget.CHECK: _check_field,
    Widget.KEY: _key_field,
    Widget.DEVICE: _device_field,
    Widget.FOLDER: _folder_field,
}


def make_field(setting: Setting[Any], value: object, options: Options = ()) -> Field:
    """The widget for `setting`'s declared row, showing `value`."""
    row = setting.row
    assert row is not None, f"{setting.key} has no row in the dialog"
    field = FIELD_MAKERS[row.widget](setting, value, options)
    if row.tooltip:
        field.widget.setToolTip(row.tooltip)
    return field


class _Page(QWidget):
    """A tab's page; says when it comes on screen (its tab chosen, the dialog shown)."""

    shown = Signal()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.shown.emit()


class SettingsDialog(QDialog):
    applied = Signal(dict)

    def __init__(
        self,
        values: Mapping[str, object],
        profiles: Options,
        services: Services,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(480)
        self.services = services
        self._tasks: set[asyncio.Future[Any]] = set()
        self._preview: SampleSource | None = None
        self._preview_generation = 0
        self.confirm: QMessageBox | None = None
        # What is not a setting: the audio page's meter and device status, the API key
        # page, the privacy page's "delete all data".
        self.input_meter = LevelMeter("Input level", theme.MIC_COLOUR)
        self.device_status = QLabel(LOADING_DEVICES)
        self.refresh_devices_button = QPushButton("Refresh")
        self.devices_loaded = False
        self.api_key = QLineEdit()
        self.save_key_button = QPushButton("Save key")
        self.test_key_button = QPushButton("Test key")
        self.session_key_button = QPushButton("Use for this session only")
        self.key_status = QLabel()
        # Why the keyring cannot save a key, and what to do instead; hidden while fine.
        self.keyring_status = QLabel()
        self.keyring_check: asyncio.Future[Any] | None = None  # asked once per dialog
        self.keyring_problem: KeyringProblem | None = None  # None: fine, or not known yet
        self.delete_button = QPushButton("Delete all data…")
        self.delete_status = QLabel("")

        # The settings' rows, as declared; options known only at run time replace the
        # declared ones (the models the services offer, the profiles the window shows).
        options: dict[str, Options] = {
            MODEL.key: [(m, m) for m in services.models],
            PROFILE.key: profiles,
        }
        after: dict[str, list[tuple[str, QWidget | QLayout]]] = {
            INPUT_DEVICE.key: [("", self.input_meter)],
            OUTPUT_DEVICE.key: [("", self._device_row())],
        }
        self.fields: dict[str, Field] = {}
        forms = {page: QFormLayout() for page in Page}
        for setting in SETTINGS:
            if setting.row is None:
                continue  # set elsewhere (the toolbar)
            field = make_field(
                setting, values.get(setting.key, setting.default), options.get(setting.key, ())
            )
            self.fields[setting.key] = field
            forms[setting.row.page].addRow(setting.row.label, field.widget)
            for label, extra in after.get(setting.key, ()):
                forms[setting.row.page].addRow(label, extra)
        self._key_rows(forms[Page.API_KEY])
        self._delete_rows(forms[Page.PRIVACY])
        self.tabs = QTabWidget()
        for page in Page:
            self.tabs.addTab(self._page(forms[page], page), page.value)

        # The generated widgets, by the names the dialog's code and its tests use.
        self.model = self.widget(MODEL, QComboBox)
        self.language = self.widget(LANGUAGE, QLineEdit)
        self.profile = self.widget(PROFILE, QComboBox)
        self.ptt_key = self.widget(PUSH_TO_TALK_KEY, QKeySequenceEdit)
        self.sensitivity = self.widget(VAD_SENSITIVITY, QComboBox)
        self.vad_silence = self.widget(VAD_SILENCE_MS, QSpinBox)
        self.input_device = self.widget(INPUT_DEVICE, QComboBox)
        self.output_device = self.widget(OUTPUT_DEVICE, QComboBox)
        self.playout_ms = self.widget(PLAYOUT_BUFFER_MS, QSpinBox)
        self.echo_mode = self.widget(ECHO_MODE, QComboBox)
        self.frame_ms = self.widget(FRAME_MS, QComboBox)
        self.noise_gate = self.widget(NOISE_GATE, QCheckBox)
        self.normalize = self.widget(NORMALIZE, QCheckBox)
        self.retention_days = self.widget(RETENTION_DAYS, QSpinBox)
        self.input_device.currentIndexChanged.connect(lambda _: self._start_preview())

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._apply)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        self.finished.connect(lambda _: self._stop_preview())

    def widget(self, setting: Setting[Any], kind: type[W]) -> W:
        """The widget generated for `setting`."""
        widget = self.fields[setting.key].widget
        assert isinstance(widget, kind), (setting.key, type(widget))
        return widget

    def _device_row(self) -> QHBoxLayout:
        """The device lists' status and their Refresh button. The lists arrive from an
        executor (PortAudio is slow to ask), so the dialog opens at once with the saved
        choices and fills in the rest."""
        self.refresh_devices_button.setToolTip("List the audio devices again")
        self.refresh_devices_button.clicked.connect(lambda: self.load_devices(refresh=True))
        row = QHBoxLayout()
        row.addWidget(self.device_status, 1)
        row.addWidget(self.refresh_devices_button)
        return row

    def _key_rows(self, form: QFormLayout) -> None:
        services = self.services
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText(
            "A key is stored in your system keyring" if services.has_api_key()
            else "Paste your Gemini API key"
        )  # fmt: skip
        self.key_status.setText(
            "A key is saved." if services.has_api_key()
            else "No key: the app runs the offline demo with synthetic replies."
        )  # fmt: skip
        self.key_status.setWordWrap(True)
        self.keyring_status.setWordWrap(True)
        self.keyring_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.keyring_status.hide()
        self.save_key_button.clicked.connect(self._save_key)
        self.test_key_button.clicked.connect(self._test_key)
        self.session_key_button.clicked.connect(self._use_key_for_session)
        self.save_key_button.setEnabled(services.store_api_key is not None)
        self.test_key_button.setEnabled(services.test_api_key is not None)
        self.session_key_button.setEnabled(services.use_api_key_for_session is not None)
        self.session_key_button.setToolTip(
            "Use the key until EmoDesk quits: kept in memory, never saved"
        )
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(self.save_key_button)
        key_row.addWidget(self.test_key_button)
        form.addRow("Gemini API key", key_row)
        session_row = QHBoxLayout()
        session_row.addStretch(1)
        session_row.addWidget(self.session_key_button)
        form.addRow("", session_row)
        form.addRow("", self.key_status)
        form.addRow("", self.keyring_status)

    def _delete_rows(self, form: QFormLayout) -> None:
        self.delete_button.setEnabled(self.services.delete_all_data is not None)
        self.delete_button.clicked.connect(self._confirm_delete)
        form.addRow("", self.delete_button)
        form.addRow("", self.delete_status)

    def _page(self, form: QFormLayout, which: Page) -> QWidget:
        page = _Page()
        if which is Page.API_KEY:  # on screen: ask whether the keyring can save a key
            page.shown.connect(self.check_keyring)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        page.setLayout(form)
        return page

    def load_devices(self, refresh: bool = False) -> asyncio.Future[Any]:
        """Fill the device lists from the services (an executor in the app)."""
        self.refresh_devices_button.setEnabled(False)
        self.device_status.setText(LOADING_DEVICES)

        async def run() -> None:
            try:
                inputs, outputs = await asyncio.wait_for(self.services.devices(refresh), 15)
            except Exception as exc:
                log.warning("listing audio devices failed: %s", exc)
                self.device_status.setText(f"Could not list the audio devices: {exc}")
            else:
                self._fill_devices(self.input_device, inputs)
                self._fill_devices(self.output_device, outputs)
                self.device_status.setText("" if inputs or outputs else "No audio devices found.")
                self.devices_loaded = True
            self.refresh_devices_button.setEnabled(True)

        return self._spawn(run())

    @staticmethod
    def _fill_devices(box: QComboBox, devices: DeviceList) -> None:
        """Replace the list (by description, the default marked), keeping the choice (a
        missing saved device stays listed, so saving the dialog does not silently
        switch devices)."""
        current = box.currentData() or ""
        choices = [d if isinstance(d, DeviceChoice) else DeviceChoice(d, d) for d in devices]
        default = next((c.title for c in choices if c.is_default), None)
        box.blockSignals(True)
        box.clear()
        box.addItem(f"{SYSTEM_DEFAULT} ({default})" if default else SYSTEM_DEFAULT, "")
        for choice in choices:
            box.addItem(f"{choice.title} (default)" if choice.is_default else choice.title,
                        choice.value)  # fmt: skip
            box.setItemData(box.count() - 1, choice.value, Qt.ItemDataRole.ToolTipRole)
        index = box.findData(current)
        if index < 0:
            box.addItem(f"{current} (not connected)", current)
            index = box.count() - 1
        box.setCurrentIndex(index)
        box.blockSignals(False)

    def values(self) -> dict[str, Any]:
        """The value of every setting the dialog shows, by key."""
        return {key: field.value() for key, field in self.fields.items()}

    def _apply(self) -> None:
        self.applied.emit(self.values())
        self.accept()

    # -- live input level ---------------------------------------------------------------
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self.devices_loaded and self.refresh_devices_button.isEnabled():
            self.load_devices()
        self._start_preview()

    def _start_preview(self) -> None:
        previewer = self.services.level_preview
        if previewer is None:
            return
        self._preview_generation += 1
        generation = self._preview_generation
        device = self.input_device.currentData() or ""

        async def run() -> None:
            try:
                source = await previewer(device)
            except Exception as exc:  # a device that cannot open: say so beside the meter
                log.warning("level preview failed: %s", exc)
                source = None
                self.input_meter.setToolTip(f"Cannot open this microphone: {exc}")
            # A later request (another device, or the dialog closing) supersedes this one.
            if generation == self._preview_generation:
                self._preview = source

        self._spawn(run())

    def _stop_preview(self) -> None:
        self._preview_generation += 1
        self._preview = None
        if self.services.level_preview is not None:
            self._spawn(self.services.level_preview(None))

    def tick(self) -> bool:
        """Called by the window's frame clock while the dialog is open; a live preview
        keeps the clock at its full rate."""
        if self._preview is not None and self.isVisible():
            self.input_meter.set_level(*dbfs(self._preview.latest(800)))
            return True
        return False

    # -- API key --------------------------------------------------------------------------
    def check_keyring(self) -> asyncio.Future[Any] | None:
        """Ask the services (off the GUI thread) whether the keyring can save a key; when
        not, say why and what to do instead, and offer only this session's use."""
        checker = self.services.keyring_problem
        if checker is None or self.keyring_check is not None:
            return self.keyring_check

        async def run() -> None:
            try:
                problem = await asyncio.wait_for(checker(), 15)
            except Exception as exc:
                log.warning("checking the keyring failed: %s", exc)
                problem = KeyringProblem(f"The system keyring cannot be checked ({exc}).", True)
            self._show_keyring_problem(problem)

        self.keyring_check = self._spawn(run())
        return self.keyring_check

    def _show_keyring_problem(self, problem: KeyringProblem | None) -> None:
        self.keyring_problem = problem
        self.keyring_status.setText(problem.message if problem else "")
        self.keyring_status.setVisible(problem is not None)
        if problem is not None and not problem.can_save:
            # Saving cannot work; this session's use can.
            self.save_key_button.setEnabled(False)
            self.save_key_button.setToolTip("No keyring service to save the key in")
            self.session_key_button.setDefault(True)

    def _use_key_for_session(self) -> None:
        key = self.api_key.text().strip()
        user = self.services.use_api_key_for_session
        if not key or user is None:
            self.key_status.setText("Paste a key first.")
            return
        self.session_key_button.setEnabled(False)

        async def run() -> None:
            try:
                outcome = await asyncio.wait_for(user(key), 30)
            except Exception as exc:
                self.key_status.setText(f"Could not use the key: {exc}")
            else:
                self.api_key.clear()
                self.key_status.setText(outcome)
            self.session_key_button.setEnabled(True)

        self._spawn(run())

    def _save_key(self) -> None:
        key = self.api_key.text().strip()
        storer = self.services.store_api_key
        if not key or storer is None:
            self.key_status.setText("Paste a key first.")
            return
        self.save_key_button.setEnabled(False)
        self.key_status.setText("Saving…")

        async def run() -> None:
            try:
                # A keyring unlock prompt may wait.
                outcome = await asyncio.wait_for(storer(key), 30)
            except Exception as exc:
                self.key_status.setText(
                    f"Could not save the key: {exc}. You can use it for this session only."
                    if self.services.use_api_key_for_session is not None
                    else f"Could not save the key: {exc}."
                )
            else:
                self.api_key.clear()
                self.key_status.setText(outcome)
            problem = self.keyring_problem
            self.save_key_button.setEnabled(problem is None or problem.can_save)

        self._spawn(run())

    def _test_key(self) -> None:
        tester = self.services.test_api_key
        key = self.api_key.text().strip()
        if tester is None:
            return
        self.test_key_button.setEnabled(False)
        self.key_status.setText("Testing…")

        async def run() -> None:
            try:
                ok, message = await asyncio.wait_for(tester(key), timeout=15)
            except Exception as exc:
                ok, message = False, f"test failed: {exc}"
            self.key_status.setText(("✓ " if ok else "✗ ") + message)
            self.test_key_button.setEnabled(True)

        self._spawn(run())

    # -- delete all data --------------------------------------------------------------------
    def _confirm_delete(self) -> None:
        self.confirm = QMessageBox(
            QMessageBox.Icon.Warning,
            "Delete all data?",
            "This deletes every stored session, reading and transcript, and your saved "
            "consent answer. It cannot be undone.",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        delete = self.confirm.addButton("Delete everything", QMessageBox.ButtonRole.DestructiveRole)
        delete.clicked.connect(self._delete)
        self.confirm.open()

    def _delete(self) -> None:
        deleter = self.services.delete_all_data
        if deleter is None:
            return

        async def run() -> None:
            try:
                message = await deleter()
            except Exception as exc:
                message = f"Could not delete: {exc}"
            self.delete_status.setText(message)

        self._spawn(run())

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
