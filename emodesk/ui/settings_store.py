"""Persistence of the app's settings with QSettings (an INI file in the platform config
dir, or a given file for tests), plus what only the window keeps: its geometry.

`AppSettings` (core) says what the fields are and reads them back from text; an INI file
edited by hand or written by an older version cannot stop the app: bad values fall back
to their defaults and are reported by `load`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from emodesk.core.settings import CONSENT_KEYS, AppSettings, parse_settings

ORGANISATION = "EmoDesk"
APPLICATION = "EmoDesk"
_GROUP = "app"


def open_qsettings(path: str | Path | None = None) -> QSettings:
    """The user's settings file, or `path` (tests pass a temp file)."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION
    )


class SettingsStore:
    def __init__(self, qsettings: QSettings) -> None:
        self.q = qsettings

    @property
    def path(self) -> str:
        return self.q.fileName()

    def load(self) -> tuple[AppSettings, tuple[str, ...]]:
        """The saved settings and the names of saved values that were rejected."""
        self.q.beginGroup(_GROUP)
        try:
            values = {key: self.q.value(key) for key in self.q.childKeys()}
        finally:
            self.q.endGroup()
        return parse_settings(values)

    def save(self, settings: AppSettings) -> None:
        mapping = settings.to_mapping()
        self.q.beginGroup(_GROUP)
        try:
            if settings.consent is None:
                for key in CONSENT_KEYS:
                    self.q.remove(key)
            for key, value in mapping.items():
                self.q.setValue(key, value)
        finally:
            self.q.endGroup()
        self.q.sync()

    def geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, geometry: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.sync()

    def clear(self) -> None:
        self.q.clear()
        self.q.sync()
