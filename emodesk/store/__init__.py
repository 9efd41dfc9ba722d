"""sqlite3 session history: sessions, readings, transcripts."""
