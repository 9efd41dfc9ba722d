"""The Gemini API key as the settings dialog sees it: whether one is saved, whether the
system keyring can save one, saving one or using one for this session only (the running
app switches to it at once), and testing one against Google's API.

A key for this session only is held in this object's memory and nowhere else: not in
the keyring, a settings file or a log line (it is redacted like a saved key)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from emodesk.ui.services import KeyringProblem

log = logging.getLogger(__name__)


class ApiKeys:
    """`use_key(key)`: the app's switch to a saved key (a new connection and stack).
    `endpoint`, `ca_file`, `offline`: as the app was started."""

    def __init__(
        self,
        *,
        use_key: Callable[[str], Awaitable[None]],
        endpoint: str | None = None,
        ca_file: str | None = None,
        offline: bool = False,
        token_url: str | None = None,
    ) -> None:
        self._use_key = use_key
        self.token_url = token_url  # the token service in effect (the backend sets it)
        self._endpoint = endpoint
        self._ca_file = ca_file
        self._offline = offline
        self._saved = False  # answered from here: the keyring can block on D-Bus
        self._newest: str | None = None  # of keys saved in a row, only this one is used
        self._session_key: str | None = None  # "use for this session only": memory alone
        self._switching = asyncio.Lock()
        self.switch: asyncio.Task[None] | None = None  # the newest switch started

    def has_key(self) -> bool:
        return self._saved

    async def keyring_problem(self) -> KeyringProblem | None:
        """None when the system keyring can save a key; else why not and what to do
        instead, in plain words, for the settings dialog. Asked on an executor (D-Bus),
        and never by unlocking the keyring."""
        from emodesk.live.credentials import ENV_API_KEY, NO_KEYRING, keyring_problem

        loop = asyncio.get_running_loop()
        try:
            problem = await asyncio.wait_for(loop.run_in_executor(None, keyring_problem), 10)
        except TimeoutError:
            problem = "The system keyring did not answer"
        if problem is None:
            return None
        return KeyringProblem(
            f"{problem}. You can use the key for this session only (kept in memory until "
            f"EmoDesk quits, never saved), or set {ENV_API_KEY} in your environment: for "
            f"example add the line  export {ENV_API_KEY}=your-key  to ~/.profile, then log "
            "out and in again.",
            can_save=problem != NO_KEYRING,  # locked, or slow to answer: saving may work
        )

    async def load(self) -> str | None:
        """The key for this session if one was given, else the saved key (the keyring,
        else GEMINI_API_KEY), read on an executor; None when there is none, or when it
        cannot be used (logged: the app runs the offline demo). A key found is redacted
        from the log from now on."""
        from emodesk.live.credentials import install_log_redaction, load_api_key

        if self._session_key is not None:
            return self._session_key
        try:
            key = await asyncio.get_running_loop().run_in_executor(None, load_api_key)
        except Exception as exc:
            log.warning("the stored API key cannot be used: %s", exc)
            key = None
        self._saved = key is not None
        if key is not None:
            install_log_redaction(key)
        return key

    async def store(self, key: str) -> str:
        """Save the key in the keyring, then switch to it (in the background); returns
        what happens, for the user."""
        from emodesk.live.credentials import install_log_redaction, store_api_key

        key = key.strip()
        install_log_redaction(key)  # before anything can log it
        await asyncio.get_running_loop().run_in_executor(None, store_api_key, key)
        self._saved = True
        self._session_key = None  # the saved key is the one from now on
        if self._offline:
            return "Key saved in the system keyring. This run stays offline (--offline)."
        self._start_switch(key)
        return "Key saved in the system keyring. EmoDesk now uses it."

    async def use_for_session(self, key: str) -> str:
        """Use `key` until the app quits without saving it anywhere (no keyring, or the
        user would rather not); switches to it like a saved key. Returns what happens."""
        from emodesk.live.credentials import check_api_key_text, install_log_redaction

        install_log_redaction(key.strip())  # before anything can log it
        key = check_api_key_text(key)
        self._session_key = key
        self._saved = True
        if self._offline:
            return "Key kept for this session only (not saved). This run stays offline."
        self._start_switch(key)
        return "EmoDesk uses this key until it quits. It is kept in memory only, never saved."

    def _start_switch(self, key: str) -> None:
        # Not a cancel: a switch cut short would leave the old stack closed and no new one.
        self._newest = key
        self.switch = asyncio.ensure_future(self._switch_to(key))

    async def _switch_to(self, key: str) -> None:
        async with self._switching:  # one at a time, in the order saved
            if key == self._newest:  # else a newer key was saved meanwhile
                await self._use_key(key)

    async def test(self, key: str) -> tuple[bool, str]:
        """(works, why): lists models with the key (or the saved one), which proves it
        without opening a Live session. A token (`auth_tokens/...`), or with a token
        service and no key typed, a token from the service, is tested as a token: it
        opens a Live session (`live.tokens.probe_token`)."""
        from emodesk.live.credentials import load_api_key
        from emodesk.live.endpoint import EndpointError, resolve_endpoint
        from emodesk.live.tokens import is_token, probe_token

        loop = asyncio.get_running_loop()
        if is_token(key) or (not key and self.token_url):
            if self._offline:
                return False, "this run is offline (--offline): tokens are not checked"
            try:
                where = resolve_endpoint(self._endpoint, self._ca_file)
            except EndpointError as exc:
                return False, f"cannot test here: {exc}"
            return await probe_token(
                key.strip() or None,
                endpoint=where.base_url,
                ca_file=where.ca_file,
                token_url=self.token_url,
            )
        if not key and self._session_key is not None:
            key = self._session_key
        if not key:
            saved = await loop.run_in_executor(None, load_api_key)  # the keyring: D-Bus
            key = saved or ""
        if not key:
            return False, "no key to test"
        if self._offline:
            return False, "this run is offline (--offline): keys are not checked"
        try:
            custom = not resolve_endpoint(self._endpoint, self._ca_file).is_default
        except EndpointError:
            custom = True
        if custom:
            # Only Google's API answers the check; another server judges at connect.
            return False, "a custom endpoint checks the key when connecting: save it"
        # Asked for by the user, so it goes to Google even from the offline demo. A
        # failure says whether Google judged the key or was never reached.
        from emodesk.live.keycheck import check_api_key

        return await loop.run_in_executor(None, check_api_key, key)
