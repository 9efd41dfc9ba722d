"""ALSA's own messages ("underrun occurred", device probing chatter) go to the log, not
to the terminal: libasound writes them to stderr unless a program sets its error
handler. Underruns it reports are counted for the status bar."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger("emodesk.audio.alsa")

# void handler(const char *file, int line, const char *function, int err, const char *fmt, ...)
# The format's arguments are not read (ctypes cannot take C varargs): the format itself
# says what happened.
_HANDLER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)

_lock = threading.Lock()
_installed: object | None = None  # the C callback, kept alive while installed
_underruns = 0


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def _on_message(
    file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None
) -> None:
    global _underruns
    message = _text(fmt)
    if "underrun" in message:
        with _lock:
            _underruns += 1
    log.debug("ALSA %s (%s:%d): %s [%d]", _text(function), _text(file), line, message, err)


def route_alsa_messages() -> bool:
    """Install the handler once; False where libasound is not there (nothing to route)."""
    global _installed
    with _lock:
        if _installed is not None:
            return True
        name = ctypes.util.find_library("asound")
        if name is None:
            return False
        try:
            library = ctypes.CDLL(name)
            handler = _HANDLER(_on_message)
            library.snd_lib_error_set_handler(handler)
        except (OSError, AttributeError) as exc:
            log.debug("ALSA messages stay on stderr: %s", exc)
            return False
        _installed = handler
        return True


def alsa_underruns() -> int:
    """Underruns ALSA has reported since the handler was installed."""
    with _lock:
        return _underruns
