"""What the window needs from the world outside the ui layer, as plain callables the
composition root (`emodesk.app`) fills in: the keyring, device lists, a level preview,
the session history. Tests pass their own. Defaults do nothing, so a window can be built
before anything else is ready (the first window appears before google-genai loads).

Anything that can block (the keyring is D-Bus and may wait on an unlock prompt,
PortAudio takes hundreds of milliseconds to list devices, closing an audio stream up to
a second) is a coroutine here: the composition root runs it on an executor, never on
the GUI thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emodesk.core.settings import MODELS
from emodesk.ui.scope import SampleSource


@dataclass(frozen=True)
class DeviceChoice:
    """An audio device as the settings dialog offers it."""

    value: str  # what the setting keeps
    title: str  # what the user sees: the sound server's description
    is_default: bool = False


# A plain name is its own title (PortAudio's names, with no sound server to describe them).
DeviceList = Sequence[DeviceChoice | str]


async def _no_devices(_refresh: bool) -> tuple[DeviceList, DeviceList]:
    return (), ()


@dataclass(frozen=True)
class KeyringProblem:
    """Why the system keyring cannot save a key, and what to do instead, for the user."""

    message: str
    can_save: bool = False  # a locked keyring can (it asks to be unlocked); none cannot


@dataclass
class Services:
    # Whether a key is saved: answered from a cache, never by asking the keyring.
    has_api_key: Callable[[], bool] = lambda: False
    # Saves the key; returns what happens next, for the user (it is used at once).
    store_api_key: Callable[[str], Awaitable[str]] | None = None
    # None when the system keyring can save a key; else why not and what to do instead
    # (asked when the dialog shows its API key page; the keyring is D-Bus).
    keyring_problem: Callable[[], Awaitable[KeyringProblem | None]] | None = None
    # Uses the key until the app quits, saved nowhere; returns what happens, for the user.
    use_api_key_for_session: Callable[[str], Awaitable[str]] | None = None
    # (ok, message); runs on the loop and may take a second or two.
    test_api_key: Callable[[str], Awaitable[tuple[bool, str]]] | None = None
    # (inputs, outputs); cached, re-read when `refresh` is true.
    devices: Callable[[bool], Awaitable[tuple[DeviceList, DeviceList]]] = _no_devices
    # Start a level preview of an input device ("" = the default) and return its
    # samples; called with None to stop it.
    level_preview: Callable[[str | None], Awaitable[SampleSource | None]] | None = None
    # Deletes history and saved answers; returns a message for the user.
    delete_all_data: Callable[[], Awaitable[str]] | None = None
    # Past sessions as (session_id, label), newest first.
    list_sessions: Callable[[], Sequence[tuple[str, str]]] = lambda: ()
    # The session history for the History window (`emodesk.ui.history.HistorySource`,
    # the session store); None until the composition root has opened it.
    history: Any = None
    models: Sequence[str] = field(default_factory=lambda: MODELS)
