"""Hard limits on what a Live server can make the client keep or do.

A broken or hostile endpoint can stream without end; these bound memory whatever it
sends. Each is checked in `emodesk.live` before the data is kept or passed on. A reply
over a per-turn limit ends that turn as failed (the reason names the limit) and the rest
of that reply is dropped unread.
"""

from __future__ import annotations

from dataclasses import dataclass

from emodesk.core.pcm import REPLY_RATE

# One WebSocket message. websockets' own default: a bigger frame closes the link (1009)
# before it is buffered. Live frames are a 40 ms audio chunk or a few words (< 10 kB).
MAX_MESSAGE_BYTES = 1 << 20
# Reply audio for one turn. Live replies last seconds, rarely minutes; five minutes at
# 24 kHz is 14 MB, and no user listens longer to one answer.
MAX_REPLY_AUDIO_S = 300.0
# Transcript text for one turn (both sides). Five minutes of speech is about 4,000
# characters; far above that is a server streaming without end.
MAX_TURN_TEXT_CHARS = 50_000
# Function calls in one turn. The app declares a handful of tools; a model calls one or
# two per turn.
MAX_TOOL_CALLS_PER_TURN = 32
# Reply audio rates the client plays (resampled to the device). Outside this range a
# chunk is refused: zero, negative or absurd rates are not audio.
MIN_REPLY_RATE = 8_000
MAX_REPLY_RATE = 96_000
# The reply rate when a chunk's mime type names none: Gemini's.
DEFAULT_REPLY_RATE = REPLY_RATE


@dataclass(slots=True)
class ReplyBudget:
    """What one turn's reply has used of the per-turn limits. `exceeded` names the first
    limit passed; from then on the reply is dropped until `reset` (the next turn)."""

    audio_s: float = 0.0
    text_chars: int = 0
    tool_calls: int = 0
    exceeded: str = ""

    def reset(self) -> None:
        self.audio_s, self.text_chars, self.tool_calls, self.exceeded = 0.0, 0, 0, ""

    def take_audio(self, seconds: float) -> bool:
        """Count `seconds` of reply audio; False (and `exceeded` set) past the limit."""
        self.audio_s += seconds
        if self.audio_s > MAX_REPLY_AUDIO_S:
            return self._exceed(f"the reply ran over {MAX_REPLY_AUDIO_S:.0f} s of audio")
        return not self.exceeded

    def take_text(self, chars: int) -> bool:
        self.text_chars += chars
        if self.text_chars > MAX_TURN_TEXT_CHARS:
            return self._exceed(
                f"the turn's transcript ran over {MAX_TURN_TEXT_CHARS:,} characters"
            )
        return not self.exceeded

    def take_tool_calls(self, count: int) -> bool:
        self.tool_calls += count
        if self.tool_calls > MAX_TOOL_CALLS_PER_TURN:
            return self._exceed(f"the model made over {MAX_TOOL_CALLS_PER_TURN} function calls")
        return not self.exceeded

    def _exceed(self, reason: str) -> bool:
        if not self.exceeded:
            self.exceeded = reason
        return False
