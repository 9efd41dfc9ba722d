"""Screenshots of the real window mid-conversation, for the README.

Run under Xvfb (`make screenshot`). Everything is the real app except the sound card: a
private PulseAudio server whose null-sink "microphone" hears espeak-ng lines played into
it, the real audio engine, the real controller and SDK over TLS to the in-process
emulator (the offline demo), consent accepted so the timeline has readings. Three turns
are spoken with the push-to-talk button; the shots are taken while the third reply plays,
at 1280x800 and at 1024x640, into docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

OUT = Path(
    os.environ.get("EMODESK_SCREENSHOT_DIR") or Path(__file__).parents[1] / "docs/screenshots"
)
# 1024x560: what a 1024x640 screen leaves under a title bar and a desktop panel.
SIZES = ((1280, 800), (1024, 640), (1024, 560))
LINES = (
    ("Hello, can you hear me?", "normal"),
    ("Where is my order? It is three days late.", "calm"),
    ("This is really not good enough, I need it today!", "agitated"),
)


async def until(predicate: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():  # polling widget state: the window has no event for these
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def drive(window: object, backend: object, pulse: object, wavs: list[Path]) -> None:
    from emodesk.conversation.api import ConversationState as S
    from emodesk.ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    dialog = window.consent_dialog
    if dialog is not None and dialog.accept_button is not None:
        dialog.accept_button.click()
    await until(lambda: window.state is S.READY, 20, "the connection")
    for index, wav in enumerate(wavs):
        last = index == len(wavs) - 1
        window.ptt_button.pressed.emit()
        await until(lambda: window.state is S.LISTENING, 5, "push-to-talk")
        await asyncio.sleep(0.3)  # the capture stream opens
        player = pulse.play_into_mic(wav, wait=False)  # type: ignore[attr-defined]
        await asyncio.get_running_loop().run_in_executor(None, player.wait, 30)
        await asyncio.sleep(0.2)
        window.ptt_button.released.emit()
        await until(lambda: window.state is S.REPLYING, 20, "the reply")
        if last:
            await asyncio.sleep(1.2)  # let the reply's waveform scroll in
            break
        await until(lambda: window.state is S.READY, 30, "the end of the reply")
        await asyncio.sleep(0.3)
    for width, height in SIZES:
        window.resize(width, height)
        await asyncio.sleep(0.4)  # layout and a few redraws at the new size
        path = OUT / f"main-{width}x{height}.png"
        if not window.grab().save(str(path)):
            raise RuntimeError(f"could not save {path}")
        print(f"saved {path} ({window.width()}x{window.height()})")
        if (window.width(), window.height()) != (width, height):
            raise RuntimeError(f"the window does not fit {width}x{height}")
    window.close()


def main() -> int:
    import qasync
    from PySide6.QtWidgets import QApplication

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from emodesk.app import Backend, BackendOptions, build_window, run_window
    from emodesk.ui.settings_store import SettingsStore, open_qsettings
    from tests.support.pulse import PulseStack
    from tests.support.speech import AGITATED, CALM, NORMAL, speech_wav

    prosody = {"normal": NORMAL, "calm": CALM, "agitated": AGITATED}
    tmp = Path(tempfile.mkdtemp(prefix="emodesk-shot-"))
    os.environ["XDG_DATA_HOME"] = str(tmp)  # a fresh machine: no history, no settings
    os.environ["XDG_STATE_HOME"] = str(tmp)
    os.environ.pop("GEMINI_API_KEY", None)  # no key: the app starts on the offline demo
    os.environ.pop("EMODESK_ENDPOINT", None)
    OUT.mkdir(parents=True, exist_ok=True)
    pulse = PulseStack().start()
    try:
        wavs = [speech_wav(text, prosody[kind], folder=tmp) for text, kind in LINES]
        app = QApplication.instance() or QApplication(["emodesk"])
        assert isinstance(app, QApplication)
        app.setQuitOnLastWindowClosed(False)
        store = SettingsStore(open_qsettings(tmp / "settings.ini"))
        window = build_window(store)
        window.show()
        backend = Backend(
            window,
            BackendOptions(history_path=str(tmp / "history.db"), auto_connect=True),
        )
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)

        async def both() -> None:
            session = asyncio.ensure_future(run_window(window, backend))
            await until(lambda: backend.controller is not None, 20, "the backend")
            await asyncio.wait_for(drive(window, backend, pulse, wavs), 120)
            await asyncio.wait_for(session, 20)

        with loop:
            loop.run_until_complete(both())
    finally:
        pulse.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
