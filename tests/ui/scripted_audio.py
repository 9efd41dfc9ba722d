"""An `AudioPort` for end-to-end window tests: `FileAudio` (a scripted microphone and a
simulated speaker) plus the two ring buffers the audio engine exposes to the scope, so
the window's waveforms and meters see the same audio the conversation does."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from emodesk.conversation.file_audio import MIC_RATE, FileAudio
from emodesk.core.pcm import REPLY_RATE
from emodesk.dsp.ringbuffer import RingBuffer
from tests.support.speech import NORMAL, Prosody, speech_16k


class ScriptedAudio(FileAudio):
    def __init__(self, mic: npt.NDArray[np.int16], *, pace: float = 4.0) -> None:
        super().__init__(mic, pace=pace)
        self.mic_ring = RingBuffer(MIC_RATE * 10, np.int16)
        self.reply_ring = RingBuffer(REPLY_RATE * 10, np.int16)
        self.closed = False

    def start_capture(self, on_frame: Callable[[bytes], None]) -> None:
        def tap(frame: bytes) -> None:
            self.mic_ring.write(np.frombuffer(frame, dtype=np.int16))
            on_frame(frame)

        super().start_capture(tap)

    def play(self, pcm: bytes, rate: int) -> None:
        super().play(pcm, rate)
        self.reply_ring.write(np.frombuffer(pcm, dtype=np.int16))

    def close(self) -> None:
        self.closed = True
        super().close()


def utterances(*lines: tuple[str, Prosody]) -> tuple[npt.NDArray[np.int16], list[int]]:
    """espeak-ng speech of each line, with 0.2 s of silence around it, joined into one
    microphone track; returns it with the sample index where each line's audio ends."""
    pad = np.zeros(MIC_RATE // 5, dtype=np.int16)
    pieces: list[npt.NDArray[np.int16]] = []
    ends: list[int] = []
    total = 0
    for text, prosody in lines:
        piece = np.concatenate([pad, speech_16k(text, prosody), pad])
        pieces.append(piece)
        total += piece.size
        ends.append(total)
    return np.concatenate(pieces), ends


DEFAULT_LINES = (
    ("Hello there, can you help me?", NORMAL),
    ("Where is my order?", NORMAL),
    ("Thank you, that is all.", NORMAL),
)
