"""The real window behind the real composition root (`emodesk.app.Backend`), in the
offline demo: the controller, the store in a temp dir and the in-process emulator are
real; only the sound card is a scripted microphone and a simulated speaker
(`ScriptedAudio`). `start_rig` starts one; the rig speaks the script's lines by the
push-to-talk button and waits on conditions with bounds, never on sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt

from emodesk.app import Backend, BackendOptions
from emodesk.conversation.api import ConversationState
from emodesk.live.emulator.server import EmulatorServer
from emodesk.ui.main_window import MainWindow
from tests.support.qt import run, settle, until
from tests.ui.scripted_audio import DEFAULT_LINES, ScriptedAudio, utterances

S = ConversationState


@dataclass
class Rig:
    window: MainWindow
    backend: Backend
    loop: asyncio.AbstractEventLoop
    ends: list[int]
    audios: list[ScriptedAudio] = field(default_factory=list)
    spoken: int = 0  # lines of the script used so far

    @property
    def audio(self) -> ScriptedAudio:
        return self.audios[-1]

    @property
    def emulator(self) -> EmulatorServer:
        assert self.backend.emulator is not None
        return self.backend.emulator

    def settle(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        settle(self.loop, predicate, timeout)

    def connect(self) -> None:
        self.window.connect_action.trigger()
        self.settle(lambda: self.window.state is S.READY)

    def completed_turns(self) -> int:
        return sum(1 for turn in self.emulator.all_turns() if turn.completed)

    def speak(self, press: Callable[[], None], release: Callable[[], None]) -> None:
        """One push-to-talk turn of the next scripted line; returns once it is answered.
        Input arrives while the loop runs, as it does in the app."""
        run(self.loop, self._speak(press, release), 40.0)

    async def _speak(self, press: Callable[[], None], release: Callable[[], None]) -> None:
        done = self.completed_turns()
        press()
        await until(lambda: self.window.state is S.LISTENING, 10.0)
        await self.audio.wait_position(self.ends[self.spoken], 15.0)
        self.spoken += 1
        release()
        await until(lambda: self.completed_turns() > done and self.window.state is S.READY, 15.0)

    def speak_by_button(self) -> None:
        self.speak(lambda: press_button(self.window), lambda: release_button(self.window))

    def in_loop(self, action: Callable[[], None]) -> None:
        """Deliver a user action while the loop runs (as a real click or key would be)."""

        async def act() -> None:
            action()

        run(self.loop, act())


def press_button(window: MainWindow) -> None:
    from pytestqt.qtbot import QtBot

    QtBot.mousePress(window.ptt_button, Qt.MouseButton.LeftButton)


def release_button(window: MainWindow) -> None:
    from pytestqt.qtbot import QtBot

    QtBot.mouseRelease(window.ptt_button, Qt.MouseButton.LeftButton)


def start_rig(
    window: MainWindow,
    loop: asyncio.AbstractEventLoop,
    history: Path,
    *,
    options: dict[str, Any] | None = None,
    rig_type: type[Rig] = Rig,
    **rig_fields: Any,
) -> Rig:
    """The backend started on `window` with scripted microphones; `options`: the
    BackendOptions besides the history and audio (default: the offline demo, its
    emulator fast and recording), `rig_type` and `rig_fields`: a Rig subclass to hold it."""
    mic, ends = utterances(*DEFAULT_LINES)
    rig: Rig

    def make_audio(_loop: asyncio.AbstractEventLoop, _settings: Any) -> ScriptedAudio:
        audio = ScriptedAudio(mic, pace=4.0)
        rig.audios.append(audio)
        return audio

    if options is None:
        options = {"offline": True, "emulator_speed": 50.0, "emulator_record": True}
    backend = Backend(
        window, BackendOptions(history_path=str(history), audio_factory=make_audio, **options)
    )
    rig = rig_type(window, backend, loop, ends, **rig_fields)
    run(loop, backend.start(), 30.0)
    return rig


def stop_rig(rig: Rig) -> None:
    run(rig.loop, rig.backend.stop(), 30.0)
    assert all(audio.closed for audio in rig.audios)  # the audio port is always closed


def answer_consent(window: MainWindow, granted: bool) -> None:
    dialog = window.open_consent_dialog()
    button = dialog.accept_button if granted else dialog.decline_button
    assert button is not None
    button.click()


def silent_audio() -> ScriptedAudio:
    """A scripted audio port whose microphone is a second of silence."""
    return ScriptedAudio(np.zeros(16000, dtype=np.int16))
