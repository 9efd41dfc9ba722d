"""sqlite3 session history: sessions, readings, transcripts, consent decisions."""

from emodesk.store.errors import OpenReport, SessionNotFound, StoreError
from emodesk.store.session_store import SessionStore, SessionSummary, default_history_path

__all__ = [
    "OpenReport",
    "SessionNotFound",
    "SessionStore",
    "SessionSummary",
    "StoreError",
    "default_history_path",
]
