"""Where a turn's voice-to-voice time goes, for the benches that time it (`bench_latency`,
the soak): marks the emulator's process keeps (when it ended a user's turn, asked the
client its emotion call and had the answer, sent its first reply audio, sent
`interrupted`), the app engine's observer (when reply audio reached `play()`, the
playout buffer and the device), and the split of one turn between them. The emulator
runs in a process of its own on the same CLOCK_MONOTONIC, so its marks compare with the
app's times directly."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

SHARES = (
    "to_server",
    "server",
    "judge",
    "tool",
    "synth",
    "client",
    "socket",
    "hop",
    "wait",
    "device",
)
KEEP = 512  # marks and observer times kept: a few minutes of turns, bounded for the soak


class EmulatorMarks:
    """Times kept by `time_emulator`, newest last, each list bounded."""

    def __init__(self) -> None:
        self.ended: deque[float] = deque(maxlen=KEEP)
        self.first_audio: deque[float] = deque(maxlen=KEEP)
        self.interrupted: deque[float] = deque(maxlen=KEEP)
        self.tool_asked: deque[float] = deque(maxlen=KEEP)
        self.tool_answered: deque[float] = deque(maxlen=KEEP)
        # (start, end) of the emulator's own work for a reply: judging the turn, synthesis.
        self.judged: deque[tuple[float, float]] = deque(maxlen=KEEP)
        self.synthesized: deque[tuple[float, float]] = deque(maxlen=KEEP)

    def as_json(self) -> dict[str, list[Any]]:
        return {name: list(times) for name, times in vars(self).items()}


def time_emulator() -> EmulatorMarks:
    """Wraps the emulator's connection (in the emulator's process, before it serves) so
    it marks a user's turn ended, each function call asked and answered, its judging of
    a turn and its speech synthesis (start and end), the first reply audio sent after
    each turn's end and `interrupted` sent."""
    import emodesk.live.emulator.server as emulator_server

    marks = EmulatorMarks()
    connection = emulator_server._Connection
    end_turn, send, call = connection.end_turn, connection.send, connection.call
    judge, synthesize = connection.judge, emulator_server.synthesize  # type: ignore[attr-defined]

    async def timed_judge(self: Any, turn: Any) -> Any:
        start = time.monotonic()
        try:
            return await judge(self, turn)
        finally:
            marks.judged.append((start, time.monotonic()))

    def timed_synthesize(*args: Any, **kwargs: Any) -> bytes:  # on a worker thread
        start = time.monotonic()
        try:
            return synthesize(*args, **kwargs)
        finally:
            marks.synthesized.append((start, time.monotonic()))

    async def timed_end_turn(self: Any) -> None:
        marks.ended.append(time.monotonic())
        await end_turn(self)

    async def timed_send(self: Any, message: dict[str, Any]) -> None:
        content = message.get("serverContent", {})
        if "modelTurn" in content:
            if not marks.first_audio or (marks.ended and marks.first_audio[-1] < marks.ended[-1]):
                marks.first_audio.append(time.monotonic())  # a reply's first only
        elif content.get("interrupted"):
            marks.interrupted.append(time.monotonic())
        await send(self, message)

    async def timed_call(self: Any, *args: Any) -> Any:
        marks.tool_asked.append(time.monotonic())
        try:
            return await call(self, *args)
        finally:
            marks.tool_answered.append(time.monotonic())

    connection.end_turn = timed_end_turn  # type: ignore[method-assign]
    connection.send = timed_send  # type: ignore[method-assign]
    connection.call = timed_call  # type: ignore[method-assign,assignment]
    connection.judge = timed_judge  # type: ignore[method-assign]
    emulator_server.synthesize = timed_synthesize  # type: ignore[attr-defined]
    return marks


class ReplyTrace:
    """The engine's observer: when reply audio was given to `play()`, when it reached the
    playout buffer, and when the output callback handed reply samples to the device (the
    first of each reply is looked up). Only what starts a run is kept (the first chunk
    after 100 ms without one, the first block after 50 ms without one), the newest `KEEP`
    of each, so an hour's soak keeps a few kB."""

    def __init__(self) -> None:
        self.buffered: deque[tuple[float, float]] = deque(maxlen=KEEP)
        self.blocks: deque[float] = deque(maxlen=KEEP)
        self._last_play = self._last_block = float("-inf")

    def frame_posted(self, t_callback: float) -> None:
        pass

    def reply_buffered(self, t_play: float, t_buffered: float, samples: int) -> None:
        if t_play - self._last_play > 0.1:
            self.buffered.append((t_play, t_buffered))
        self._last_play = t_play

    def reply_played(self, samples: int, t_callback: float) -> None:
        if t_callback - self._last_block > 0.05:
            self.blocks.append(t_callback)
        self._last_block = t_callback


def split_turn(
    marks: dict[str, list[Any]],
    trace: ReplyTrace,
    start: float,
    onset: float,
    wait_s: float = 0.0,
) -> dict[str, float]:
    """One turn's voice-to-voice time (`start`: key up or end of speech; `onset`: the
    first reply sound), in seconds: `to_server` (-> the server ends the turn, less its
    `wait_s`), `server` (-> its first reply audio sent; of it `judge`, its judging of the
    turn, `tool`, its emotion call's round trip through the app, and `synth`, its speech
    synthesis), `client` (-> heard; of it `socket` to `play()`, `hop`
    to the playout buffer, `wait` there to the first block's callback, `device` from it
    to the speaker). Empty when the emulator's marks do not cover the turn."""
    t_end = next((t for t in marks["ended"] if t >= start - 0.2), None)
    t_audio = next((t for t in marks["first_audio"] if t_end is not None and t >= t_end), None)
    if t_end is None or t_audio is None:
        return {}
    out = {
        "to_server": t_end - start - wait_s,
        "server": t_audio - t_end,
        "client": onset - t_audio,
    }
    asked = [t for t in marks.get("tool_asked", []) if t_end <= t <= t_audio]
    answered = [t for t in marks.get("tool_answered", []) if t_end <= t <= t_audio]
    if asked and answered:
        out["tool"] = answered[-1] - asked[0]
    for name, spans in (("judge", "judged"), ("synth", "synthesized")):
        inside = [b - a for a, b in marks.get(spans, []) if t_end <= a and b <= t_audio]
        if inside:
            out[name] = sum(inside)
    first = next(((p, b) for p, b in list(trace.buffered) if p >= t_audio), None)
    t_block = next((t for t in list(trace.blocks) if first is not None and t >= first[1]), None)
    if first is not None and t_block is not None:
        out["socket"] = first[0] - t_audio
        out["hop"] = first[1] - first[0]
        out["wait"] = t_block - first[1]
        out["device"] = onset - t_block
    return out
