"""sqlite3 session history: sessions, readings, transcripts, consent decisions."""

from emodesk.store.errors import NotAHistory, OpenReport, SessionNotFound, StoreError
from emodesk.store.session_store import SessionStore, SessionSummary, default_history_path

__all__ = [
    "NotAHistory",
    "OpenReport",
    "SessionNotFound",
    "SessionStore",
    "SessionSummary",
    "StoreError",
    "default_history_path",
]
