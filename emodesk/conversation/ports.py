"""The small interfaces the controller drives. The audio engine, the file-based audio of
`emodesk converse` and test doubles implement `AudioPort`; `LiveSession` implements
`LivePort`. The controller imports neither implementation (import-linter checks it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from emodesk.core.devices import DeviceSide
from emodesk.live.events import LiveEvent
from emodesk.live.settings import LiveSettings


class AudioPort(Protocol):
    def prepare_capture(self) -> None:
        """Open the microphone ahead of the turns and keep it open until `release_capture`,
        so a press captures from its first moment (devices can take seconds to start).
        Idempotent. Nothing reaches `on_frame` outside `start_capture`..`stop_capture`.
        A device that cannot open is reported through `on_error`."""

    def release_capture(self) -> None:
        """Close the microphone opened by `prepare_capture` (once a turn being captured
        has stopped). Idempotent."""

    def start_capture(self, on_frame: Callable[[bytes], None]) -> None:
        """Deliver the microphone (opening it if `prepare_capture` has not): `on_frame` is
        called on the asyncio loop's thread with 16 kHz mono PCM16 frames until
        `stop_capture`. A prepared microphone may first deliver a short pre-roll: the
        audio just before the call."""

    def stop_capture(self) -> None: ...

    def set_hands_free(self, enabled: bool) -> None:
        """Hands-free: the reply's echo is cancelled rather than the microphone held while
        it plays (the user interrupts by voice); off: the configured echo mode."""

    def play(self, pcm: bytes, rate: int) -> None:
        """Queue reply audio (mono PCM16 at `rate`) for playback; never blocks."""

    def flush(self) -> float:
        """Silence playback at once: drop what is queued and what the device holds.
        Returns the seconds of reply audio dropped unheard (as near as known)."""

    def set_listeners(
        self,
        on_playback_started: Callable[[float], None] | None = None,
        on_error: Callable[[str, DeviceSide], None] | None = None,
        on_info: Callable[[str, DeviceSide], None] | None = None,
    ) -> None:
        """`on_playback_started(t_monotonic)`: reply audio reached the device after
        silence. `on_error(message, side)`: a device failed (unplugged, cannot open);
        `side` is "input" (the microphone: a turn being spoken cannot go on) or "output"
        (the speaker: the conversation can). `on_info(message, side)`: the device works,
        but not as configured (another one was used) or again after a failure; nothing
        stopped. All are called on the asyncio loop's thread."""


class LivePort(Protocol):
    def set_listener(self, on_event: Callable[[LiveEvent], None]) -> None:
        """Every event from the session is passed here, on the loop's thread."""

    def set_tool_dispatcher(
        self, dispatch: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
    ) -> None:
        """Who answers the model's function calls: `dispatch(name, args)` returns the
        response. Each call runs in its own task; a call the server withdraws
        (`ToolCallCancelled`) is cancelled."""

    def set_history(self, history: Callable[[], Sequence[tuple[str, str]]]) -> None:
        """Where the session reads the conversation so far, as (role, text) pairs, when
        it must seed a fresh server session (a refused resume, a new voice)."""

    async def start(self, settings: LiveSettings) -> None:
        """Connect (reconnecting by itself afterwards as the events report)."""

    async def reconfigure(self, settings: LiveSettings) -> None:
        """Apply a change fixed at setup (voice, consent, profile): reconnect with the
        resumption handle, or start fresh seeded with the history (`set_history`)."""

    async def close(self) -> None: ...

    def forget(self) -> None:
        """Make the next `start()` a new conversation: drop the resumption handle
        (otherwise a reconnect resumes the conversation on the server)."""

    def abandon_turn(self) -> None:
        """The unanswered user turn is given up: never send it again after a reconnect."""

    def send_audio(self, pcm: bytes) -> None:
        """Queue 16 kHz mono PCM16 for the socket; never blocks. Audio queued while
        reconnecting is sent after the reconnect or reported as `AudioDropped`."""

    def activity_start(self) -> None:
        """A push-to-talk turn begins. Until the server completes it, the turn is kept
        and sent again (once) after a reconnect (`TurnResent`, `TurnUndelivered`)."""

    def activity_end(self) -> None: ...

    async def send_text(self, text: str) -> None:
        """A typed turn (kept for a re-send like a spoken one)."""
