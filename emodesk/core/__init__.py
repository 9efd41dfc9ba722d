"""Pure-Python model of EmoDesk: emotion readings, parsing, tracking, export, profiles.

Imports the standard library only (checked by import-linter)."""
