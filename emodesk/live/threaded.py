"""A `LiveSession` on an asyncio loop of its own thread (`LiveOnThread`), so that reading
and parsing the socket never waits for the thread that runs the caller's loop: in the
desktop app that is the GUI thread, whose painting and layout held reply audio back by
up to tens of milliseconds and made the playout buffer wait longer for it.

The caller's calls are passed to the session's loop in the order made; the session's
events come back to the caller's loop in the order emitted, each called there as
`LivePort` promises. `start`, `reconfigure` and `close` return once the session's part
is done and every event it emitted meanwhile has been delivered.

Two exceptions, for latency. Reply audio may be played on the session's thread as it
arrives (`set_early_playback`), but only while no event that could change whether it is
wanted is still on its way to the caller (an interruption, a turn's end, the link's
state, audio held back): the caller's view of the conversation is then current but for
its own actions since, and its event handler corrects that case (the chunk's event says
`played=True`). And the server's `interrupted` silences the reply there at once
(`set_early_silence`): whatever the caller's state, a reply the server stopped is not
to be heard, and a barge-in should not wait for the caller's thread (the event says
what was dropped).

Every session shares one loop thread, started on first use and kept for the process (a
daemon): a conversation stack rebuilt for new settings makes a new session, not a new
thread."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from emodesk.live.events import (
    AudioChunk,
    AudioDropped,
    EmotionReported,
    InputTranscript,
    Interrupted,
    LiveEvent,
    OutputTranscript,
    TextReply,
    ToolCallCancelled,
)
from emodesk.live.session import HistorySource, LiveSession, ToolDispatcher
from emodesk.live.settings import LiveSettings

T = TypeVar("T")

# Events that cannot change whether reply audio is wanted: early playback goes on while
# they are on their way to the caller. Any other (and a chunk not played) holds it back.
_NEUTRAL = (
    InputTranscript,
    OutputTranscript,
    TextReply,
    EmotionReported,
    ToolCallCancelled,
    AudioDropped,
)

_loop_lock = threading.Lock()
_shared_loop: asyncio.AbstractEventLoop | None = None


def session_loop() -> asyncio.AbstractEventLoop:
    """The loop every `LiveOnThread` session runs on, its thread started on first use."""
    global _shared_loop
    with _loop_lock:
        if _shared_loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=run, name="live-session-loop", daemon=True).start()
            ready.wait()
            _shared_loop = loop
        return _shared_loop


class LiveOnThread:
    """Implements `emodesk.conversation.ports.LivePort` by running a `LiveSession` on
    `session_loop()`. Made on the caller's loop (its thread is where events arrive)."""

    def __init__(self, make_session: Callable[[], LiveSession]) -> None:
        self._caller = asyncio.get_running_loop()
        self._loop = session_loop()
        self._session = make_session()  # binds to no loop until it runs on its own
        self._session.set_listener(self._forward)
        self._listener: Callable[[LiveEvent], None] | None = None
        self._early: Callable[[AudioChunk], bool] | None = None
        self._silence: Callable[[], float] | None = None
        self._lock = threading.Lock()
        self._held = 0  # events on their way to the caller that hold early playback back

    @property
    def session(self) -> LiveSession:
        """The session itself: read its state from any thread; call it only on its own."""
        return self._session

    # -- wiring (before start) --------------------------------------------------------

    def set_listener(self, on_event: Callable[[LiveEvent], None]) -> None:
        self._listener = on_event

    def set_early_playback(self, play: Callable[[AudioChunk], bool] | None) -> None:
        """`play(chunk)`, called on the session's thread while no event that could change
        the answer is on its way to the caller, plays the chunk if it is wanted and says
        whether it did. It reads what the caller's thread writes: it must be quick and
        thread-safe, and its answer may be stale by the caller's own latest action."""
        self._early = play

    def set_early_silence(self, silence: Callable[[], float] | None) -> None:
        """`silence()`, called on the session's thread when the server says it stopped its
        reply, silences reply audio and returns the seconds it dropped unheard; it must
        be quick and thread-safe. The `Interrupted` event then carries that figure."""
        self._silence = silence

    def set_tool_dispatcher(self, dispatch: ToolDispatcher) -> None:
        """Each call is answered on the caller's loop (the tools touch its state); the
        session's task awaits it, and cancelling that task cancels the answer."""

        async def on_caller(name: str, args: dict[str, Any]) -> dict[str, Any]:
            future = asyncio.run_coroutine_threadsafe(_awaited(dispatch(name, args)), self._caller)
            return await asyncio.wrap_future(future)

        self._session.set_tool_dispatcher(on_caller)

    def set_history(self, history: HistorySource) -> None:
        """`history()` is called on the session's thread: it must be safe there (a tuple
        copy of a list the caller appends to is: the copy holds the GIL throughout)."""
        self._session.set_history(history)

    # -- calls ------------------------------------------------------------------------

    async def start(self, settings: LiveSettings) -> None:
        await self._run(self._session.start(settings))

    async def reconfigure(self, settings: LiveSettings) -> None:
        await self._run(self._session.reconfigure(settings))

    async def close(self) -> None:
        await self._run(self._session.close())

    def forget(self) -> None:
        self._post(self._session.forget)

    def abandon_turn(self) -> None:
        self._post(self._session.abandon_turn)

    def send_audio(self, pcm: bytes) -> None:
        self._post(self._session.send_audio, bytes(pcm))

    def activity_start(self) -> None:
        self._post(self._session.activity_start)

    def activity_end(self) -> None:
        self._post(self._session.activity_end)

    async def send_text(self, text: str) -> None:
        # Queued in call order with the audio around it (a task would start a step late).
        self._post(self._session.queue_text, text)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the process is exiting
            self._loop.call_soon_threadsafe(fn, *args)

    async def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        # The events the session emitted meanwhile were posted to the caller's loop before
        # the end was, so they are delivered before this returns.
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # -- events -----------------------------------------------------------------------

    def _forward(self, event: LiveEvent) -> None:
        """On the session's thread: play reply audio early if allowed, or silence a reply
        the server stopped, then pass the event to the caller's loop."""
        if isinstance(event, Interrupted) and self._silence is not None:
            event = Interrupted(unheard_s=self._silence())
        elif isinstance(event, AudioChunk) and self._early is not None:
            with self._lock:
                quiet = self._held == 0
            if quiet and self._early(event):
                event = dataclasses.replace(event, played=True)
        holds = not isinstance(event, _NEUTRAL) and not (
            isinstance(event, AudioChunk) and event.played
        )
        if holds:
            with self._lock:
                self._held += 1
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody listens
            self._caller.call_soon_threadsafe(self._deliver, event, holds)

    def _deliver(self, event: LiveEvent, holds: bool) -> None:
        try:
            if self._listener is not None:
                self._listener(event)
        finally:
            if holds:
                with self._lock:
                    self._held -= 1


async def _awaited(aw: Awaitable[T]) -> T:
    return await aw
