"""The session history's upkeep: the retention setting applied (at start, when it is
changed, and at exit for "only the current session"), "delete all data", and the past
sessions listed for the export menu."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emodesk.conversation.controller import Controller
    from emodesk.core.settings import AppSettings
    from emodesk.store import SessionStore

log = logging.getLogger(__name__)

DELETED_ALL = "All sessions, readings, transcripts and your consent answer were deleted."


class History:
    """`warn(message)` shows a failure the app works on through (the window's banner)."""

    def __init__(self, store: SessionStore, warn: Callable[[str], None]) -> None:
        self.store = store
        self._warn = warn
        self.retention_days: int | None = None  # as last applied
        self._masked = False  # the stored lines were masked with the redactor in use

    async def apply_retention(self, keep_days: int) -> int:
        """Delete the sessions older than `keep_days` (the open one is kept); returns how
        many. A failure is shown, and the app works on with the old sessions there."""
        self.retention_days = keep_days
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, self.store.apply_retention, keep_days)
        except Exception as exc:
            log.warning("retention could not be applied: %s", exc)
            self._warn(f"Old sessions could not be deleted as the retention setting asks: {exc}")
            return 0

    def apply_redaction(self, settings: AppSettings) -> asyncio.Future[int] | None:
        """Transcript lines stored from now on: masked (with the user's names) or, when
        the setting says so, verbatim. When masking starts (at start, or turned on, or
        with other names), the lines already stored are masked too, on an executor;
        returns that work, or None."""
        from emodesk.store.redaction import redactor_for

        redactor = redactor_for(settings.redact_transcripts, settings.redact_names)
        before, self.store.redactor = self.store.redactor, redactor
        if redactor is None or (redactor == before and self._masked):
            return None
        self._masked = True
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(None, self.store.mask_stored_transcripts)
        work.add_done_callback(self._masking_done)
        return work

    def _masking_done(self, work: asyncio.Future[int]) -> None:
        if work.cancelled():
            return
        error = work.exception()
        if error is not None:
            log.warning("stored transcripts could not be masked: %s", error)
            self._warn(f"Stored transcripts could not be masked: {error}")
        elif work.result():
            log.info("masked personal data in %d stored transcript line(s)", work.result())

    async def at_exit(self) -> None:
        """ "Only the current session": it has just ended, so nothing is left behind. (A
        longer retention was applied at start; a day more of a run is moot.)"""
        if self.retention_days == 0:
            await self.apply_retention(0)

    async def delete_all(
        self, controller: Controller | None, forget_consent: Callable[[], None]
    ) -> str:
        """End the open session, withdraw consent, delete the history, `forget_consent`
        (the saved answer, and the screen), and reconnect with a fresh session if the
        user was connected (the old session's rows are gone, so it cannot go on).
        Returns what was done, for the user. The caller keeps the stack from being
        swapped meanwhile."""
        from emodesk.conversation.api import ConversationState as S

        was_connected = controller is not None and controller.state not in (S.OFFLINE, S.ERROR)
        if controller is not None:
            if controller.session_id is not None:
                await controller.end_session()
            elif was_connected:
                await controller.disconnect()
            if controller.consent:
                await controller.set_consent(False)
            await controller.drain()  # queued writes land before the delete
        await asyncio.get_running_loop().run_in_executor(None, self.store.delete_all)
        forget_consent()
        if was_connected and controller is not None:
            await controller.connect()
        return DELETED_ALL

    def sessions(self) -> list[tuple[str, str]]:
        """Past sessions as (session_id, label), newest first. Local time: the user
        remembers when they talked, not the UTC hour."""
        return [
            (
                s.session_id,
                f"{s.started_utc.astimezone():%Y-%m-%d %H:%M} · {s.reading_count} readings",
            )
            for s in self.store.sessions()
        ]
