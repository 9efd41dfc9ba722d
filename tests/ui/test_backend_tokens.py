"""The app with an organisation's token service: the real window and composition root,
the emulator requiring tokens and the token service on loopback (tests/live's rig);
only the sound card is scripted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emodesk.conversation.api import ConversationState
from emodesk.live.emulator.server import EmulatorServer
from emodesk.live.tokens import is_token
from emodesk.ui.main_window import MainWindow
from tests.live.test_tokens import SECRET, token_rig
from tests.live.test_tokens import Rig as TokenRig
from tests.support.app_rig import Rig, start_rig
from tests.support.qt import run

S = ConversationState
pytestmark = pytest.mark.timeout(90)


@dataclass
class AppRig(Rig):
    tokens: TokenRig | None = None

    @property
    def emulator(self) -> EmulatorServer:
        assert self.tokens is not None
        return self.tokens.emulator


@pytest.fixture
def app(
    window: MainWindow,
    qloop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AppRig]:
    monkeypatch.setenv("EMODESK_TOKEN_SECRET", SECRET)
    services = token_rig()
    tokens = run(qloop, services.__aenter__(), 30.0)
    rig = start_rig(
        window,
        qloop,
        tmp_path / "history.db",
        options={"endpoint": tokens.emulator.url, "ca_file": tokens.emulator.ca_file},
        rig_type=AppRig,
        tokens=tokens,
    )
    assert isinstance(rig, AppRig)
    try:
        yield rig
    finally:
        run(qloop, rig.backend.stop(), 30.0)
        run(qloop, services.__aexit__(None, None, None), 30.0)


def test_a_token_service_set_in_settings_is_used_at_once_and_no_key_is_read(
    app: AppRig,
) -> None:
    window, backend = app.window, app.backend
    dialog = window.open_settings("API key")
    dialog.fields["token_url"].widget.setText(f"  {app.tokens.token_url} ")
    app.in_loop(dialog._apply)
    app.settle(lambda: backend.controller.settings.token_url == app.tokens.token_url)
    assert backend.keys.token_url == app.tokens.token_url
    app.connect()
    app.speak_by_button()
    connections = app.emulator.connections
    assert connections and all(is_token(c.api_key or "") for c in connections)
    assert len(app.emulator.minted) == len(connections)

    # Cleared again: the loopback endpoint without a key, which this emulator refuses.
    dialog = window.open_settings("API key")
    dialog.fields["token_url"].widget.setText("")
    app.in_loop(dialog._apply)
    app.settle(lambda: backend.keys.token_url is None)
    app.settle(lambda: window.state in (S.ERROR, S.OFFLINE))
    assert not is_token(app.emulator.connections[-1].api_key or "")
