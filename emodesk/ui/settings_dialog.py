"""The settings dialog. It edits a plain dict of values (the window maps it onto the app's
settings dataclass) and reaches the outside only through `SettingsServices`: plain
callables the composition root fills in (keyring, device lists, a level preview), so the
ui never imports the audio or live layers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from emodesk.core.settings import (
    FRAME_MS_CHOICES,
    PLAYOUT_BUFFER_RANGE_MS,
    RETENTION_RANGE_DAYS,
    VAD_SILENCE_RANGE_MS,
)
from emodesk.ui import theme
from emodesk.ui.scope import LevelMeter, SampleSource, dbfs
from emodesk.ui.services import Services

log = logging.getLogger(__name__)

SYSTEM_DEFAULT = "System default"
LOADING_DEVICES = "Loading devices…"
SENSITIVITIES = (("high", "High — reacts to quiet speech"), ("low", "Low — ignores background"))
ECHO_MODES = (
    ("half_duplex", "Mute the microphone while the reply plays"),
    ("full_duplex_aec", "Echo cancellation (talk over the reply)"),
)


def _combo(items: Sequence[tuple[Any, str]], current: Any) -> QComboBox:
    box = QComboBox()
    for value, title in items:
        box.addItem(title, value)
    index = box.findData(current)
    if index < 0 and current:
        box.addItem(current, current)
        index = box.count() - 1
    box.setCurrentIndex(max(0, index))
    return box


def _spin(bounds: tuple[int, int], value: int, suffix: str, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(*bounds)
    box.setSingleStep(step)
    box.setSuffix(suffix)
    box.setValue(value)  # after the range, or it would be clamped to the default 0..99
    return box


class SettingsDialog(QDialog):
    applied = Signal(dict)

    def __init__(
        self,
        values: dict[str, Any],
        profiles: Sequence[tuple[str, str]],
        services: Services,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(480)
        self.services = services
        self._tasks: set[asyncio.Task[Any]] = set()
        self._preview: SampleSource | None = None
        self._preview_generation = 0
        self.tabs = QTabWidget()

        # -- conversation
        self.model = _combo([(m, m) for m in services.models], values.get("model", ""))
        self.model.setEditable(True)
        self.language = QLineEdit(str(values.get("language", "English")))
        self.profile = _combo(profiles, values.get("profile", "general"))
        self.ptt_key = QKeySequenceEdit(QKeySequence(str(values.get("push_to_talk_key", "Space"))))
        self.ptt_key.setMaximumSequenceLength(1)
        self.sensitivity = _combo(SENSITIVITIES, str(values.get("vad_sensitivity", "high")))
        self.vad_silence = _spin(VAD_SILENCE_RANGE_MS, int(values.get("vad_silence_ms", 500)),
                                 " ms", step=100)  # fmt: skip
        self.vad_silence.setToolTip("Hands-free: how long a pause ends your turn")
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Reply language", self.language)
        form.addRow("Profile", self.profile)
        form.addRow("Push-to-talk key", self.ptt_key)
        form.addRow("Hands-free sensitivity", self.sensitivity)
        form.addRow("Hands-free pause that ends a turn", self.vad_silence)
        self.tabs.addTab(self._page(form), "Conversation")

        # -- audio: the device lists arrive from an executor (PortAudio is slow to ask),
        # so the dialog opens at once with the saved choices and fills in the rest.
        self.input_device = self._device_combo(values, "input_device")
        self.output_device = self._device_combo(values, "output_device")
        self.device_status = QLabel(LOADING_DEVICES)
        self.refresh_devices_button = QPushButton("Refresh")
        self.refresh_devices_button.setToolTip("List the audio devices again")
        self.refresh_devices_button.clicked.connect(lambda: self.load_devices(refresh=True))
        self.devices_loaded = False
        self.input_meter = LevelMeter("Input level", theme.MIC_COLOUR)
        self.playout_ms = _spin(PLAYOUT_BUFFER_RANGE_MS, int(values.get("playout_buffer_ms", 60)),
                                " ms", step=5)  # fmt: skip
        self.playout_ms.setToolTip("Reply audio buffered before playback, against network jitter")
        self.echo_mode = _combo(ECHO_MODES, str(values.get("echo_mode", "half_duplex")))
        self.echo_mode.setToolTip("Hands-free always cancels the echo, so you can interrupt")
        self.frame_ms = _combo(
            [(ms, f"{ms} ms") for ms in FRAME_MS_CHOICES], int(values.get("frame_ms", 20))
        )
        self.frame_ms.setToolTip("Shorter frames send your voice sooner, in more packets")
        self.noise_gate = QCheckBox("Silence the microphone below a noise floor")
        self.noise_gate.setChecked(bool(values.get("noise_gate", False)))
        self.normalize = QCheckBox("Even out a quiet or loud microphone")
        self.normalize.setChecked(bool(values.get("normalize", False)))
        device_row = QHBoxLayout()
        device_row.addWidget(self.device_status, 1)
        device_row.addWidget(self.refresh_devices_button)
        audio = QFormLayout()
        audio.addRow("Microphone", self.input_device)
        audio.addRow("", self.input_meter)
        audio.addRow("Speaker", self.output_device)
        audio.addRow("", device_row)
        audio.addRow("Playout buffer", self.playout_ms)
        audio.addRow("Echo handling", self.echo_mode)
        audio.addRow("Frame length", self.frame_ms)
        audio.addRow("Noise gate", self.noise_gate)
        audio.addRow("Volume", self.normalize)
        self.tabs.addTab(self._page(audio), "Audio")
        self.input_device.currentIndexChanged.connect(lambda _: self._start_preview())

        # -- API key
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText(
            "A key is stored in your system keyring" if services.has_api_key()
            else "Paste your Gemini API key"
        )  # fmt: skip
        self.save_key_button = QPushButton("Save key")
        self.test_key_button = QPushButton("Test key")
        self.key_status = QLabel(
            "A key is saved." if services.has_api_key()
            else "No key: the app runs the offline demo with synthetic replies."
        )  # fmt: skip
        self.key_status.setWordWrap(True)
        self.save_key_button.clicked.connect(self._save_key)
        self.test_key_button.clicked.connect(self._test_key)
        self.save_key_button.setEnabled(services.store_api_key is not None)
        self.test_key_button.setEnabled(services.test_api_key is not None)
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(self.save_key_button)
        key_row.addWidget(self.test_key_button)
        key_form = QFormLayout()
        key_form.addRow("Gemini API key", key_row)
        key_form.addRow("", self.key_status)
        self.tabs.addTab(self._page(key_form), "API key")

        # -- privacy
        self.retention_days = _spin(RETENTION_RANGE_DAYS, int(values.get("retention_days", 30)),
                                    " days")  # fmt: skip
        self.retention_days.setSpecialValueText("Only the current session")
        self.delete_button = QPushButton("Delete all data…")
        self.delete_button.setEnabled(services.delete_all_data is not None)
        self.delete_button.clicked.connect(self._confirm_delete)
        self.delete_status = QLabel("")
        privacy = QFormLayout()
        privacy.addRow("Keep session history for", self.retention_days)
        privacy.addRow("", self.delete_button)
        privacy.addRow("", self.delete_status)
        self.tabs.addTab(self._page(privacy), "Privacy")

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._apply)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        self.finished.connect(lambda _: self._stop_preview())
        self.confirm: QMessageBox | None = None

    @staticmethod
    def _page(form: QFormLayout) -> QWidget:
        page = QWidget()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        page.setLayout(form)
        return page

    @staticmethod
    def _device_combo(values: dict[str, Any], key: str) -> QComboBox:
        return _combo([("", SYSTEM_DEFAULT)], str(values.get(key) or ""))

    def load_devices(self, refresh: bool = False) -> asyncio.Task[Any]:
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
    def _fill_devices(box: QComboBox, names: Sequence[str]) -> None:
        """Replace the list, keeping the choice (a missing saved device stays listed, so
        saving the dialog does not silently switch devices)."""
        current = box.currentData() or ""
        box.blockSignals(True)
        box.clear()
        box.addItem(SYSTEM_DEFAULT, "")
        for name in names:
            box.addItem(name, name)
        index = box.findData(current)
        if index < 0:
            box.addItem(current, current)
            index = box.count() - 1
        box.setCurrentIndex(index)
        box.blockSignals(False)

    def values(self) -> dict[str, Any]:
        key_text = self.ptt_key.keySequence().toString() or "Space"
        return {
            "model": self.model.currentText().strip(),
            "language": self.language.text().strip() or "English",
            "profile": self.profile.currentData(),
            "push_to_talk_key": key_text,
            "vad_sensitivity": self.sensitivity.currentData(),
            "vad_silence_ms": self.vad_silence.value(),
            "frame_ms": self.frame_ms.currentData(),
            "noise_gate": self.noise_gate.isChecked(),
            "normalize": self.normalize.isChecked(),
            "input_device": self.input_device.currentData() or "",
            "output_device": self.output_device.currentData() or "",
            "playout_buffer_ms": self.playout_ms.value(),
            "echo_mode": self.echo_mode.currentData(),
            "retention_days": self.retention_days.value(),
        }

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
                self.key_status.setText(f"Could not save the key: {exc}")
            else:
                self.api_key.clear()
                self.key_status.setText(outcome)
            self.save_key_button.setEnabled(True)

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

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
