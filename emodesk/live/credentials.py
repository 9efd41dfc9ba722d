"""The Gemini API key: from the OS keyring (service "emodesk") or `GEMINI_API_KEY`.

The key never goes into a settings file or a log line; `RedactingFilter` masks it (and
anything shaped like a Google API key or an ephemeral token) in every record that passes
a handler, and `install_log_redaction(key)` puts it on the root logger's handlers.
A key with whitespace or control characters inside is refused: it would only fail in an
HTTP header, whose error message then carries the key in plain text.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

KEYRING_SERVICE = "emodesk"
KEYRING_USER = "gemini-api-key"
ENV_API_KEY = "GEMINI_API_KEY"

_SECRET_SHAPES = re.compile(r"AIza[0-9A-Za-z_\-]{20,}|auth_tokens/[0-9A-Za-z_\-.]+")
_REDACTED = "[redacted]"
INVALID_STORED_KEY = "the stored API key contains invalid characters"


class CredentialError(RuntimeError):
    """The keyring could not store or delete the key (locked, no backend), or the key
    itself is unusable (empty, whitespace or control characters inside)."""


def _is_usable(key: str) -> bool:
    return all(c.isprintable() and not c.isspace() for c in key)


def load_api_key(env: Mapping[str, str] | None = None) -> str | None:
    """The keyring first, then the environment; None when neither has a key."""
    try:
        import keyring
        import keyring.errors

        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
    except Exception:  # any keyring backend failure means "not in the keyring"
        stored = None
    if stored and stored.strip():
        if not _is_usable(stored.strip()):
            raise CredentialError(INVALID_STORED_KEY)
        return stored.strip()
    env = os.environ if env is None else env
    from_env = env.get(ENV_API_KEY, "").strip()
    if from_env and not _is_usable(from_env):
        raise CredentialError(f"the API key in {ENV_API_KEY} contains invalid characters")
    return from_env or None


def check_api_key_text(key: str) -> str:
    """The key, stripped; `CredentialError` when it is empty or has whitespace or control
    characters inside (it would only fail later, in an HTTP header)."""
    key = key.strip()
    if not key:
        raise CredentialError("the API key is empty")
    if not _is_usable(key):
        raise CredentialError("the API key contains invalid characters (spaces or control)")
    return key


# In plain words: keyring's own NoKeyringError text tells the user to pip install things.
NO_KEYRING = (
    "No keyring service is running on this desktop (such as GNOME Keyring or KWallet), "
    "so the key cannot be saved"
)
KEYRING_LOCKED = "The system keyring is locked: saving the key asks you to unlock it"


def store_api_key(key: str) -> None:
    key = check_api_key_text(key)
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, key)
    except keyring.errors.NoKeyringError as exc:
        raise CredentialError(NO_KEYRING) from exc
    except keyring.errors.KeyringLocked as exc:
        raise CredentialError("the system keyring is locked and was not unlocked") from exc
    except Exception as exc:  # a backend's own errors (D-Bus, a dismissed prompt) too
        raise CredentialError(
            f"the keyring could not store the key: {redact(str(exc), (key,))}"
        ) from exc


def keyring_problem() -> str | None:
    """None when the OS keyring can store the key; else why not, in plain words (none
    running, or locked). Never unlocks it or shows a prompt. Blocks (D-Bus): run it on
    an executor."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null

        backend = keyring.get_keyring()
        found = list(backend.backends) if isinstance(backend, chainer.ChainerBackend) else [backend]
    except Exception as exc:
        return f"The system keyring cannot be used ({exc})"
    usable = [b for b in found if not isinstance(b, (fail.Keyring, null.Keyring))]
    if not usable:
        return NO_KEYRING
    try:
        if any(_secret_service_locked(b) for b in usable):
            return KEYRING_LOCKED
    except Exception as exc:  # no default collection, D-Bus gone: the save will say
        return f"The system keyring cannot be used ({exc})"
    return None


def _secret_service_locked(backend: object) -> bool:
    """Whether `backend` is the Secret Service (GNOME Keyring, KeePassXC) and its default
    collection is locked. Asks without unlocking."""
    from keyring.backends import SecretService

    if not isinstance(backend, SecretService.Keyring):
        return False
    import secretstorage

    connection = secretstorage.dbus_init()
    try:
        return bool(secretstorage.get_default_collection(connection).is_locked())
    finally:
        connection.close()


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with each of `secrets` and anything shaped like a key or token masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return _SECRET_SHAPES.sub(_REDACTED, text)


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
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text, so the traceback is masked once, here.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True


def install_log_redaction(secret: str) -> None:
    """Masks `secret` (and key-shaped text) in everything the root logger's handlers
    write. Call again with a new key: the filter already installed learns it too."""
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)  # used while logging is not configured
    for handler in handlers:
        existing = next((f for f in handler.filters if isinstance(f, RedactingFilter)), None)
        if existing is None:
            handler.addFilter(RedactingFilter(secret))
        else:
            existing.add_secret(secret)
