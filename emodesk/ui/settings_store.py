"""Persistence of the user's settings with QSettings (an INI file in the platform config
dir, or a given file for tests), plus what only the window cares about: the push-to-talk
key, the window geometry and the consent decision.

The app's settings are a frozen dataclass owned by `core`; this module stores any such
dataclass field by field, converting each value back to the type of the field's default,
so it never needs to know the fields by name and a bad value falls back to the default.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QByteArray, QSettings

ORGANISATION = "EmoDesk"
APPLICATION = "EmoDesk"
T = TypeVar("T")


def open_qsettings(path: str | Path | None = None) -> QSettings:
    """The user's settings file, or `path` (tests pass a temp file)."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION
    )


def _coerce(value: Any, like: Any) -> Any:
    """A value read back from the INI file as the type of `like` (raises if it cannot)."""
    if isinstance(like, bool):
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
            raise ValueError(value)
        return bool(value)
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, str):
        return str(value)
    if like is None:
        return None if value in ("", None, "@Invalid()") else str(value)
    if isinstance(like, tuple):
        if isinstance(value, str):
            return tuple(v for v in value.split(",") if v) if value else ()
        return tuple(value)
    raise ValueError(f"cannot store {type(like).__name__}")


class SettingsStore:
    def __init__(self, qsettings: QSettings) -> None:
        self.q = qsettings

    # -- the app's settings dataclass -----------------------------------------------------
    def load(self, default: T) -> T:
        """`default` with every field that was saved (and is still valid) replaced."""
        assert dataclasses.is_dataclass(default) and not isinstance(default, type)
        changes: dict[str, Any] = {}
        self.q.beginGroup("app")
        try:
            for f in dataclasses.fields(default):
                if not self.q.contains(f.name):
                    continue
                try:
                    changes[f.name] = _coerce(self.q.value(f.name), getattr(default, f.name))
                except (TypeError, ValueError):
                    continue
        finally:
            self.q.endGroup()
        try:
            return dataclasses.replace(default, **changes)
        except (TypeError, ValueError):
            return default  # a saved combination the dataclass now rejects

    def save(self, settings: object) -> None:
        assert dataclasses.is_dataclass(settings) and not isinstance(settings, type)
        self.q.beginGroup("app")
        try:
            for f in dataclasses.fields(settings):
                value = getattr(settings, f.name)
                if isinstance(value, tuple):
                    value = ",".join(str(v) for v in value)
                elif value is None:
                    value = ""
                if isinstance(value, bool | int | float | str):
                    self.q.setValue(f.name, value)
        finally:
            self.q.endGroup()
        self.q.sync()

    # -- window-only values ---------------------------------------------------------------
    def value(self, key: str, default: T) -> T:
        if not self.q.contains(key):
            return default
        try:
            result: T = _coerce(self.q.value(key), default)
            return result
        except (TypeError, ValueError):
            return default

    def set_value(self, key: str, value: bool | int | float | str) -> None:
        self.q.setValue(key, value)
        self.q.sync()

    def geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, geometry: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.sync()

    def consent(self) -> tuple[bool, str, datetime] | None:
        """(granted, version, when) of the last answer, or None if never asked."""
        if not self.q.contains("consent/version"):
            return None
        try:
            granted = _coerce(self.q.value("consent/granted"), False)
            version = str(self.q.value("consent/version"))
            when = datetime.fromisoformat(str(self.q.value("consent/utc")))
        except (TypeError, ValueError):
            return None
        return granted, version, when

    def set_consent(self, granted: bool, version: str, when: datetime | None = None) -> None:
        self.q.setValue("consent/granted", granted)
        self.q.setValue("consent/version", version)
        self.q.setValue("consent/utc", (when or datetime.now(UTC)).isoformat())
        self.q.sync()

    def clear(self) -> None:
        self.q.clear()
        self.q.sync()
