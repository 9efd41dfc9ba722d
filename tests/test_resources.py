"""The files inside the package (the icon) and the one app id the desktop knows EmoDesk
by: the desktop file's name and Icon key, the AppStream id and launchable."""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from emodesk import resources

PACKAGING = Path(__file__).resolve().parent.parent / "packaging"


def test_the_icon_is_an_svg_inside_the_package() -> None:
    path = resources.icon_path()
    assert path.is_file()
    assert Path(resources.__file__).parent in path.parents
    root = ET.fromstring(resources.read_bytes(resources.ICON))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_a_package_in_a_zip_gives_a_copy_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "emodesk.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("emodesk/resources/emodesk.svg", resources.read_bytes(resources.ICON))
    inside = zipfile.Path(archive, "emodesk/resources/")
    monkeypatch.setattr(resources, "files", lambda _name: inside)
    monkeypatch.setattr(resources, "_extracted", {})
    path = resources.icon_path()
    assert path.is_file() and not str(path).startswith(str(archive))
    assert path.read_bytes() == resources.read_bytes(resources.ICON)
    assert resources.icon_path() == path  # extracted once


def test_the_desktop_file_and_metainfo_carry_the_app_id() -> None:
    desktop = PACKAGING / f"{resources.APP_ID}.desktop"
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(desktop, encoding="utf-8")
    assert entry["Desktop Entry"]["Icon"] == resources.APP_ID
    assert entry["Desktop Entry"]["Exec"].split()[0] == "emodesk"

    component = ET.parse(PACKAGING / f"{resources.APP_ID}.metainfo.xml").getroot()
    assert component.findtext("id") == resources.APP_ID
    assert component.findtext("launchable") == desktop.name
    # every screenshot is one of docs/screenshots/, at the size the metainfo states
    images = list(component.iter("image"))
    assert images
    for image in images:
        png = PACKAGING.parent / "docs" / "screenshots" / (image.text or "").rsplit("/", 1)[-1]
        header = png.read_bytes()[16:24]  # IHDR: width, height
        size = (int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big"))
        assert size == (int(image.get("width", 0)), int(image.get("height", 0))), png.name
    default = component.find("screenshots/screenshot[@type='default']/image")
    assert default is not None and (default.text or "").endswith("main-1280x800.png")
