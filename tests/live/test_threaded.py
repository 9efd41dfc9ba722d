"""`LiveOnThread`: a Live session on a thread of its own, through the real SDK and TLS to
the emulator, and its early playback of reply audio."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from emodesk.live.emulator.wire import normalize_keys
from emodesk.live.events import (
    AudioChunk,
    GenerationComplete,
    InputTranscript,
    Interrupted,
    LinkState,
    LinkStateChanged,
    LiveEvent,
    OutputTranscript,
    TurnComplete,
)
from emodesk.live.session import LiveSession
from emodesk.live.threaded import LiveOnThread, session_loop
from tests.support.emulator import (
    FAST_RETRY,
    EventLog,
    ToolAnswered,
    answering_into,
    frames,
    push_to_talk_turn,
    running_emulator,
    settings_for,
    tone,
)


class ThreadLog(EventLog):
    """An event log that also notes the thread each event was delivered on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def __call__(self, event: Any) -> None:
        self.threads.add(threading.get_ident())
        super().__call__(event)


async def test_a_turn_goes_through_the_session_thread_and_comes_back_in_order() -> None:
    pcm = tone(0.4)
    caller = threading.get_ident()
    early_threads: set[int] = set()

    def play_early(chunk: AudioChunk) -> bool:
        early_threads.add(threading.get_ident())
        return True

    async with running_emulator() as server:
        live = LiveOnThread(lambda: LiveSession(retry=FAST_RETRY, connect_timeout_s=5.0))
        log = ThreadLog()
        live.set_listener(log)
        live.set_history(log.said)
        dispatch = answering_into(log)
        dispatch_threads: set[int] = set()

        async def dispatch_noting_thread(name: str, args: dict[str, Any]) -> dict[str, Any]:
            dispatch_threads.add(threading.get_ident())
            return dict(await dispatch(name, args))

        live.set_tool_dispatcher(dispatch_noting_thread)
        live.set_early_playback(play_early)
        async with asyncio.timeout(10):
            await live.start(settings_for(server, emotion_tool=True))
        try:
            # start() returned after the connected state was delivered here.
            assert log.of(LinkStateChanged)[-1].state is LinkState.CONNECTED
            push_to_talk_turn(live, pcm)  # type: ignore[arg-type]
            await log.wait_for(TurnComplete)
        finally:
            async with asyncio.timeout(10):
                await live.close()

    # The calls went out in the order made: start, every frame, end.
    wire = [normalize_keys(m) for m in server.received]
    realtime = [m["realtime_input"] for m in wire if "realtime_input" in m]
    assert "activity_start" in realtime[0] and "activity_end" in realtime[-1]
    assert sum(1 for r in realtime if "audio" in r) == len(frames(pcm))
    assert bytes(server.connections[0].turns[0].audio) == pcm  # in order, whole
    # Every event, and the tool call, on the caller's thread; the socket on another.
    assert log.threads == {caller} and dispatch_threads == {caller}
    assert early_threads and caller not in early_threads
    # Events in the order the session emitted them, the reply audio played early.
    kinds = [type(e) for e in log.events]
    assert kinds.index(ToolAnswered) < kinds.index(AudioChunk)
    assert kinds.index(GenerationComplete) < kinds.index(TurnComplete)
    chunks = log.of(AudioChunk)
    assert chunks and all(c.played for c in chunks)
    assert sum(len(c.data) for c in chunks) == server.connections[0].turns[0].reply_bytes
    assert log.of(LinkStateChanged)[-1].state is LinkState.CLOSED  # delivered by close()


async def test_early_playback_waits_while_an_event_that_could_change_it_is_undelivered() -> None:
    live = LiveOnThread(LiveSession)
    delivered: list[LiveEvent] = []
    played: list[AudioChunk] = []
    live.set_listener(delivered.append)
    live.set_early_playback(lambda chunk: played.append(chunk) is None)

    def emit(*events: LiveEvent) -> None:
        """As the session does, on its thread; this (the caller's) loop is held meanwhile."""

        async def go() -> None:
            for event in events:
                live.session._emit(event)

        asyncio.run_coroutine_threadsafe(go(), session_loop()).result(5)

    a, b, c = (AudioChunk(bytes([n, 0]) * 240, 24000) for n in (1, 2, 3))
    emit(a, OutputTranscript("hello"), Interrupted(), b)
    # `a` played at once; `b` waits: the interruption has not reached the caller yet.
    assert played == [a]
    for _ in range(5):
        await asyncio.sleep(0)
    assert delivered == [
        AudioChunk(a.data, 24000, played=True),
        OutputTranscript("hello"),
        Interrupted(),
        b,
    ]
    # Delivered: the next chunk plays early again; transcripts never hold it back.
    emit(InputTranscript("hi"), c)
    assert played == [a, c]
    for _ in range(5):
        await asyncio.sleep(0)
    assert delivered[-1] == AudioChunk(c.data, 24000, played=True)


async def test_the_servers_interruption_silences_the_reply_on_the_session_thread() -> None:
    """A barge-in does not wait for the caller's loop: the reply is silenced on the
    session's thread as `interrupted` arrives, and the event says what that dropped."""
    live = LiveOnThread(LiveSession)
    delivered: list[LiveEvent] = []
    silenced_on: list[int] = []
    live.set_listener(delivered.append)

    def silence() -> float:
        silenced_on.append(threading.get_ident())
        return 1.25

    live.set_early_silence(silence)

    async def go() -> int:
        live.session._emit(Interrupted())
        return threading.get_ident()

    # This (the caller's) loop is held meanwhile: the silence came first, on the other thread.
    session_thread = asyncio.run_coroutine_threadsafe(go(), session_loop()).result(5)
    assert session_thread != threading.get_ident()
    assert silenced_on == [session_thread] and not delivered
    for _ in range(5):
        await asyncio.sleep(0)
    assert delivered == [Interrupted(unheard_s=1.25)]
