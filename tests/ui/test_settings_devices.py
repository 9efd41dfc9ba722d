"""The settings dialog lists the sound server's devices by description with the default
marked, keeps their server names as the setting, and keeps a saved device that is not
connected now."""

from __future__ import annotations

import asyncio
import dataclasses

from emodesk.core.settings import Page
from emodesk.ui.main_window import MainWindow
from emodesk.ui.services import DeviceChoice, Services
from tests.support.qt import settle

MIC = "alsa_input.pci-0000_00_1f.3.analog-stereo"
USB = "alsa_input.usb-0c76_USB_PnP_Audio_Device-00.mono-fallback"
SPEAKER = "alsa_output.pci-0000_00_1f.3.analog-stereo"


def titles(box) -> list[str]:  # type: ignore[no-untyped-def]
    return [box.itemText(i) for i in range(box.count())]


def test_devices_by_description_with_the_default_marked(
    window: MainWindow, qloop: asyncio.AbstractEventLoop
) -> None:
    async def devices(refresh: bool) -> tuple[list[DeviceChoice], list[DeviceChoice]]:
        return (
            [DeviceChoice(MIC, "Built-in Audio Analog Stereo", True),
             DeviceChoice(USB, "USB PnP Audio Device Mono")],
            [DeviceChoice(SPEAKER, "Built-in Audio Analog Stereo", True)],
        )  # fmt: skip

    window.services = Services(devices=devices)
    window.settings = dataclasses.replace(window.settings, output_device="bluez_sink.00_11_22")
    dialog = window.open_settings(Page.AUDIO.value)
    settle(qloop, lambda: dialog.devices_loaded, 10)
    assert titles(dialog.input_device) == [
        "System default (Built-in Audio Analog Stereo)",
        "Built-in Audio Analog Stereo (default)",
        "USB PnP Audio Device Mono",
    ]
    dialog.input_device.setCurrentIndex(2)
    assert titles(dialog.output_device)[-1] == "bluez_sink.00_11_22 (not connected)"
    values = dialog.values()
    assert values["input_device"] == USB and values["output_device"] == "bluez_sink.00_11_22"
    dialog.close()


def test_plain_names_where_there_is_no_sound_server(
    window: MainWindow, qloop: asyncio.AbstractEventLoop
) -> None:
    async def devices(refresh: bool) -> tuple[list[str], list[str]]:
        return ["HDA Intel PCH: ALC892 Analog (hw:0,0)"], ["default"]

    window.services = Services(devices=devices)
    dialog = window.open_settings(Page.AUDIO.value)
    settle(qloop, lambda: dialog.devices_loaded, 10)
    assert titles(dialog.input_device) == [
        "System default",
        "HDA Intel PCH: ALC892 Analog (hw:0,0)",
    ]
    dialog.close()
