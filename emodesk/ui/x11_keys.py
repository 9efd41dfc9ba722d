"""X11's detectable auto-repeat, asked for on Qt's own connection to the X server.

By default an X server sends a held key's auto-repeat as KeyRelease/KeyPress pairs, and
Qt can flag a pair as auto-repeat only when the press is already queued behind the
release, so a client has to wait after each key-up to learn whether it was real (see
`ui/ptt.py`). With the XKB per-client flag DetectableAutoRepeat (the same request as
Xlib's `XkbSetDetectableAutoRepeat`) the server sends repeats as presses alone and a
release only when the key really goes up, so no key-up has to wait. The flag belongs to
the client's connection: only Qt's, reached through its native interface, will do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache
from typing import Any

from PySide6.QtGui import QGuiApplication

log = logging.getLogger(__name__)

_USE_CORE_KBD = 0x100  # XCB_XKB_ID_USE_CORE_KBD
_DETECTABLE_AUTO_REPEAT = 0x1  # XCB_XKB_PER_CLIENT_FLAG_DETECTABLE_AUTO_REPEAT


class _Cookie(ctypes.Structure):
    _fields_ = [("sequence", ctypes.c_uint)]


class _PerClientFlagsReply(ctypes.Structure):  # xcb_xkb_per_client_flags_reply_t
    _fields_ = [
        ("response_type", ctypes.c_uint8),
        ("device_id", ctypes.c_uint8),
        ("sequence", ctypes.c_uint16),
        ("length", ctypes.c_uint32),
        ("supported", ctypes.c_uint32),
        ("value", ctypes.c_uint32),
        ("auto_ctrls", ctypes.c_uint32),
        ("auto_ctrls_values", ctypes.c_uint32),
        ("pad", ctypes.c_uint8 * 8),
    ]


def _xcb_connection(app: QGuiApplication) -> int | None:
    if app.platformName() != "xcb":
        return None
    native: Any = app.nativeInterface()  # QNativeInterface.QX11Application on xcb
    connection = getattr(native, "connection", None)
    return int(connection()) if connection is not None else None


@cache
def _libraries() -> tuple[Any, Any] | None:
    xkb_name = ctypes.util.find_library("xcb-xkb") or "libxcb-xkb.so.1"
    try:
        xkb = ctypes.CDLL(xkb_name)
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    request = xkb.xcb_xkb_per_client_flags
    u32 = ctypes.c_uint32
    request.argtypes = [ctypes.c_void_p, ctypes.c_uint16, u32, u32, u32, u32, u32]
    request.restype = _Cookie
    reply = xkb.xcb_xkb_per_client_flags_reply
    reply.argtypes = [ctypes.c_void_p, _Cookie, ctypes.c_void_p]
    reply.restype = ctypes.POINTER(_PerClientFlagsReply)
    return xkb, libc


def enable_detectable_auto_repeat() -> bool:
    """Ask the X server to send a held key's repeats without releases. True when the app
    runs on X11 and the server granted it; False elsewhere (other platforms flag their
    repeats themselves) or when it cannot be had (no XKB, no libxcb-xkb)."""
    app = QGuiApplication.instance()
    if not isinstance(app, QGuiApplication):
        return False
    connection = _xcb_connection(app)
    libraries = _libraries() if connection else None
    if connection is None or libraries is None:
        return False
    xkb, libc = libraries
    flag = _DETECTABLE_AUTO_REPEAT
    cookie = xkb.xcb_xkb_per_client_flags(connection, _USE_CORE_KBD, flag, flag, 0, 0, 0)
    reply = xkb.xcb_xkb_per_client_flags_reply(connection, cookie, None)
    if not reply:  # an X error: the server has no XKB, or refused
        log.info("X11 detectable auto-repeat refused: key-ups wait for a repeat's press")
        return False
    try:
        granted = bool(reply.contents.supported & reply.contents.value & flag)
    finally:
        libc.free(reply)
    log.info("X11 detectable auto-repeat %s", "on" if granted else "not supported")
    return granted


def is_x11() -> bool:
    app = QGuiApplication.instance()
    return isinstance(app, QGuiApplication) and app.platformName() == "xcb"
