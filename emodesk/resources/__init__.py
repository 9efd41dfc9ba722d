"""Files shipped inside the package (the app's icon), found with `importlib.resources` so
they are there however EmoDesk is installed: a source checkout, a wheel, the frozen build.

`APP_ID` is the reverse-DNS id the desktop knows the app by: the desktop file's name
(`packaging/io.github.emodesk.EmoDesk.desktop`), the AppStream component id, the icon's
name in the hicolor theme and what the app passes to `setDesktopFileName`.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path

APP_ID = "io.github.emodesk.EmoDesk"
ICON = "emodesk.svg"

_extracted: dict[str, Path] = {}


def read_bytes(name: str) -> bytes:
    return files(__name__).joinpath(name).read_bytes()


def resource_path(name: str) -> Path:
    """A file on disk holding the resource `name`: the packaged file itself, or, when the
    package is not on a file system (a zip), a copy kept until the process ends."""
    resource = files(__name__).joinpath(name)
    if isinstance(resource, Path) and resource.is_file():
        return resource
    if name not in _extracted:
        folder = Path(tempfile.mkdtemp(prefix="emodesk-resources-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / Path(name).name
        path.write_bytes(resource.read_bytes())
        _extracted[name] = path
    return _extracted[name]


def icon_path() -> Path:
    """The app's icon (SVG)."""
    return resource_path(ICON)
