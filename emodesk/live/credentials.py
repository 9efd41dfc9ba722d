"""The Gemini API key: from the OS keyring (service "emodesk") or `GEMINI_API_KEY`.

The key never goes into a settings file or a log line; `RedactingFilter` masks it (and
anything shaped like a Google API key) in every record that passes a handler.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

KEYRING_SERVICE = "emodesk"
KEYRING_USER = "gemini-api-key"
ENV_API_KEY = "GEMINI_API_KEY"

_GOOGLE_KEY_SHAPE = re.compile(r"AIza[0-9A-Za-z_\-]{20,}")
_REDACTED = "[redacted]"


class CredentialError(RuntimeError):
    """The keyring could not store or delete the key (locked, no backend)."""


def load_api_key(env: Mapping[str, str] | None = None) -> str | None:
    """The keyring first, then the environment; None when neither has a key."""
    try:
        import keyring
        import keyring.errors

        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
    except Exception:  # any keyring backend failure means "not in the keyring"
        stored = None
    if stored and stored.strip():
        return stored.strip()
    env = os.environ if env is None else env
    from_env = env.get(ENV_API_KEY, "").strip()
    return from_env or None


def store_api_key(key: str) -> None:
    key = key.strip()
    if not key:
        raise CredentialError("the API key is empty")
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, key)
    except keyring.errors.KeyringError as exc:
        raise CredentialError(f"the keyring could not store the key: {exc}") from exc


def delete_api_key() -> bool:
    """True when a stored key was removed, False when there was none."""
    import keyring
    import keyring.errors

    try:
        keyring.delete_password(KEYRING_SERVICE, KEYRING_USER)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise CredentialError(f"the keyring could not delete the key: {exc}") from exc
    return True


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return _GOOGLE_KEY_SHAPE.sub(_REDACTED, text)


class RedactingFilter(logging.Filter):
    """Masks the given secrets and Google-shaped keys in log records (message and args)."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def add_secret(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets = (*self._secrets, secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self._secrets)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
