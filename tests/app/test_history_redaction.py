"""The composition root's history: the redaction settings reach the store (masked with
the user's names, or verbatim), and masking, when it starts, masks the lines already
stored too (an older version's, or those kept verbatim while the setting was off)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from emodesk.app.history import History
from emodesk.core.settings import AppSettings
from emodesk.store import SessionStore
from tests.store.factories import make_meta


def file_bytes(folder: Path) -> bytes:
    with sqlite3.connect(folder / "history.sqlite3") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


async def test_redaction_settings_reach_the_store(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "history.sqlite3")
    warnings: list[str] = []
    try:
        history = History(store, warnings.append)
        meta = make_meta()
        store.start_session(meta)
        assert AppSettings().redact_transcripts  # on by default
        assert history.apply_redaction(AppSettings(redact_transcripts=False)) is None
        store.add_transcript(meta.session_id, 1, "user", "Ada here: ada@example.com")
        assert [t for _, _, t in store.transcript(meta.session_id)] == ["Ada here: ada@example.com"]
        masking = history.apply_redaction(AppSettings(redact_names="Ada Lovelace"))
        assert masking is not None and await masking == 1
        store.add_transcript(meta.session_id, 2, "user", "Lovelace, +44 20 7946 0958")
        assert [t for _, _, t in store.transcript(meta.session_id)] == [
            "[name] here: [email]",
            "[name], [phone]",
        ]
        # The same settings again: nothing more to do.
        assert history.apply_redaction(AppSettings(redact_names="Ada Lovelace")) is None
        store.checkpointer.stop()
        assert b"ada@example.com" not in file_bytes(tmp_path)  # overwritten, WAL too
        assert warnings == []
    finally:
        store.close()
