"""Consent to emotion estimates, as the window runs it: asked at launch when never
answered (or answered for an older text), opened from the toolbar at any time, the
answer saved with its time and text version and passed to the controller, revoked the
same way, and forgotten when all data is deleted.

The dialog is shown with `open()` and answers through its `decided` signal: never a
nested `exec()`, which would block inside a qasync coroutine."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from PySide6.QtWidgets import QWidget

from emodesk.conversation.api import ControllerProtocol
from emodesk.core.consent import ConsentRecord
from emodesk.core.settings import AppSettings
from emodesk.ui.consent import ConsentDialog
from emodesk.ui.window.dialogs import replace_dialog


@dataclass(frozen=True)
class ConsentInfo:
    """The consent text the user answers, and its version."""

    title: str
    text: str
    version: str


class ConsentHost(Protocol):
    """What the consent flow uses of the window."""

    @property
    def controller(self) -> ControllerProtocol | None: ...

    @property
    def settings(self) -> AppSettings: ...

    @property
    def consent(self) -> bool:
        """Whether emotion estimates are on, as shown."""

    def window(self, /) -> QWidget: ...

    def save_settings(self, settings: AppSettings) -> None: ...

    def show_consent(self, granted: bool) -> None: ...

    def run_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...


class ConsentFlow:
    """`dialog` is the last consent dialog shown (kept after it closes)."""

    def __init__(self, host: ConsentHost, info: ConsentInfo) -> None:
        self.host = host
        self.info = info
        self.dialog: ConsentDialog | None = None

    def granted(self) -> bool:
        """The saved answer allows estimates, and it was given to this text."""
        record = self.host.settings.consent
        return record is not None and record.granted and record.version == self.info.version

    def needed(self) -> bool:
        """Never answered, or answered for an older text: ask at launch."""
        record = self.host.settings.consent
        return record is None or record.version != self.info.version

    def open(self) -> ConsentDialog:
        """The dialog (the one already open, if it is): allow, decline or revoke."""
        if self.dialog is not None and self.dialog.isVisible():
            return self.dialog
        info = self.info
        dialog = ConsentDialog(info.title, info.text, self.host.consent, self.host.window())
        dialog.decided.connect(self._decided)
        self.dialog = replace_dialog(self.dialog, dialog)
        dialog.open()
        return dialog

    def _decided(self, granted: bool) -> None:
        host = self.host
        record = ConsentRecord(granted, self.info.version, datetime.now(UTC))
        host.save_settings(dataclasses.replace(host.settings, consent=record))
        host.show_consent(granted)
        controller = host.controller
        # A controller that does not say its consent is told every answer.
        if controller is not None and granted != getattr(controller, "consent", None):
            host.run_task(controller.set_consent(granted))

    def forget(self) -> None:
        """All data was deleted: the saved answer goes too (the question comes again at
        the next start) and estimates are off."""
        host = self.host
        host.save_settings(dataclasses.replace(host.settings, consent=None))
        host.show_consent(False)
