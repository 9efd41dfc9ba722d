"""Keys for tests that must look like a real Google API key (the redaction and the
key checks match that shape) but are none. Made at run time: no key-shaped string is
committed, so secret scanners stay quiet and nothing here can be mistaken for one."""

from __future__ import annotations

_PREFIX = "AIza" + "Sy"  # Google's API keys: "AIza" and 35 more characters
_LENGTH = 39


def fake_api_key(label: str) -> str:
    """A 39-character string shaped like a Google API key, `label` inside it."""
    body = (label + "0123456789abcdefghijklmnopqrstuvwxyz")[: _LENGTH - len(_PREFIX)]
    return _PREFIX + body
