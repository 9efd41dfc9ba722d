"""The composition root's history: the redaction settings reach the store (masked with
the user's names, or verbatim) and the window's services hand it the store."""

from __future__ import annotations

from pathlib import Path

from emodesk.app.history import History
from emodesk.core.settings import AppSettings
from emodesk.store import SessionStore
from tests.store.factories import make_meta


def test_redaction_settings_reach_the_store(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "history.sqlite3")
    try:
        history = History(store, lambda _message: None)
        meta = make_meta()
        store.start_session(meta)
        assert AppSettings().redact_transcripts  # on by default
        history.apply_redaction(AppSettings(redact_names="Ada Lovelace"))
        store.add_transcript(meta.session_id, 1, "user", "Ada here: ada@example.com")
        history.apply_redaction(AppSettings(redact_transcripts=False))
        store.add_transcript(meta.session_id, 2, "user", "Ada here: ada@example.com")
        assert [t for _, _, t in store.transcript(meta.session_id)] == [
            "[name] here: [email]",
            "Ada here: ada@example.com",
        ]
    finally:
        store.close()
