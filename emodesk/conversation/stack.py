"""The conversation stack, assembled in one place for the desktop app and for
`emodesk converse`: a Live session, the acoustic estimator and the controller over the
audio port and the session history the caller brings (the desktop's audio engine or
converse's file audio; each opens the history its own way), and the local emulator when
the connection plan asks for one (the offline demo).

Importing this module imports google-genai's session code: the desktop app does it after
its first window is shown."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from emodesk.conversation.connection import ConnectionPlan
from emodesk.conversation.controller import (
    TURN_STALL_LIMIT_S,
    Connection,
    Controller,
    SessionStorePort,
)
from emodesk.conversation.ports import AudioPort
from emodesk.conversation.tools.registry import Tool
from emodesk.conversation.turn import ESTIMATOR_WINDOW_S
from emodesk.core.settings import AppSettings
from emodesk.dsp.estimator import AcousticEstimator
from emodesk.dsp.vad import LiveSpeech
from emodesk.live.session import LiveSession, RetryPolicy
from emodesk.live.threaded import LiveOnThread

if TYPE_CHECKING:
    from emodesk.live.emulator.server import EmulatorServer


def build_controller(
    *,
    audio: AudioPort,
    store: SessionStorePort,
    settings: AppSettings,
    connection: Connection,
    pace: float = 1.0,
    tools: Mapping[str, Tool] | None = None,
    own_thread: bool = False,
) -> Controller:
    """A controller on a new Live session, estimating from the user's turns with the
    acoustic estimator (only with consent: the controller decides); hands-free, from the
    speech that the voice detector (`LiveSpeech`: Silero, or the energy detector where
    it cannot load; `emodesk.dsp.vad.detector_name()`) finds in the microphone stream.
    `pace`: how many times faster than real time the conversation's clocks run, the
    reconnect back-off and the stall limit of a turn (converse's tests speed its file
    clock up). `tools`: the functions the user's folders make possible
    (`emodesk.conversation.tools.folders`), declared when the profile names them.
    `own_thread`: the session reads its socket on a thread of its own
    (`emodesk.live.threaded`), not on this loop's (the desktop app's GUI thread), and
    plays reply audio from there as it arrives."""
    retry = RetryPolicy()
    retry = dataclasses.replace(
        retry, base_delay_s=retry.base_delay_s / pace, max_delay_s=retry.max_delay_s / pace
    )
    live: LiveSession | LiveOnThread
    if own_thread:
        live = LiveOnThread(lambda: LiveSession(retry=retry))
    else:
        live = LiveSession(retry=retry)
    controller = Controller(
        live=live,
        audio=audio,
        store=store,
        estimator_factory=AcousticEstimator,
        speech_factory=lambda: LiveSpeech(max_s=ESTIMATOR_WINDOW_S),
        settings=settings,
        connection=connection,
        stall_limit_s=TURN_STALL_LIMIT_S / pace,
        tools=tools,
    )
    if isinstance(live, LiveOnThread):
        live.set_early_playback(controller.play_reply_audio_early)
        live.set_early_silence(controller.silence_reply_early)
    return controller


async def start_emulator(
    plan: ConnectionPlan, *, speed: float = 1.0, record: bool = False
) -> tuple[Connection, EmulatorServer]:
    """Start the local emulator a plan asks for (`plan.start_emulator`), and the
    connection to it; a real key never goes there. Stop it with `await emulator.stop()`.
    `speed` divides its reply pacing; `record` keeps every client message (tests)."""
    from emodesk.live.emulator.server import EmulatorServer

    emulator = EmulatorServer(speed=speed, record=record)
    await emulator.start()
    return plan.for_emulator(emulator.url, emulator.ca_file), emulator
