"""The audio engine: microphone frames to the asyncio loop, reply audio to the speaker.

Threads:
- PortAudio's callback threads only copy: input blocks into `_capture_ring`, output
  blocks out of the playout buffer (and into `reply_ring` / the AEC far-end ring).
- One QThread (the engine thread) does the work: it resamples, frames and processes
  captured audio and posts each frame to the loop with `call_soon_threadsafe`; it
  resamples reply audio into the playout buffer; it opens, closes and recovers devices.
- The loop's thread calls the `AudioPort` methods, which never block: they queue work
  for the engine thread and wake it.

Capture: `prepare_capture` opens the input device ahead of time (a fresh stream on a
sound server can take seconds to deliver its first block) and keeps it open until
`release_capture`; meanwhile frames only fill `mic_ring` (meters, waveform) and a short
pre-roll. `start_capture` / `stop_capture` switch delivery to `on_frame` on and off: a
press delivers the pre-roll at once, then live frames. Without `prepare_capture`,
`start_capture` opens the device and `stop_capture` closes it again.

Implements `emodesk.conversation.ports.AudioPort`. Needs no Qt event loop anywhere
(the QThread's `run` is a plain loop), so it works under a bare asyncio loop too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyaudio
from PySide6.QtCore import QThread

from emodesk.audio.alignment import BlockClock, EchoAlignment
from emodesk.audio.devices import (
    AudioDeviceError,
    DeviceInfo,
    StreamDevice,
    choose_stream_device,
    open_portaudio,
)
from emodesk.audio.echo import EchoCanceller
from emodesk.audio.observer import AudioObserver
from emodesk.audio.playout import PlayoutBuffer
from emodesk.audio.processing import CaptureProcessor
from emodesk.audio.pulse import routed
from emodesk.audio.server_output import ServerOutput
from emodesk.audio.settings import AudioSettings, EchoMode
from emodesk.core.devices import DeviceSide
from emodesk.core.pcm import MIC_RATE, REPLY_RATE
from emodesk.dsp.levels import peak_dbfs, rms_dbfs
from emodesk.dsp.resample import StreamResampler
from emodesk.dsp.ringbuffer import RingBuffer

log = logging.getLogger(__name__)

Int16Array = np.ndarray[Any, np.dtype[np.int16]]

# The engine thread sleeps until woken (a captured block, a command, reply audio); this
# bounds the sleep so the watchdog still runs when no callback comes.
_IDLE_WAIT_S = 0.25
# Between turns captured audio only feeds the meters, the waveform (redrawn at 30 Hz) and
# the pre-roll (brought up to date at the press), so the engine thread takes it in
# batches this long instead of waking for every block; during a turn every block wakes it.
_METER_PERIOD_S = 0.04
_WATCHDOG_PERIOD_S = 0.25  # stream health checks are PortAudio calls: not every wake
# A stream with no callback for this long has failed. Generous, because sound servers
# legitimately pause a fresh stream (PulseAudio null sinks: up to ~2 s at start).
_STALL_S = 3.0
_OUTPUT_BLOCK_MS = 10  # output callback size: small, so a flush has little to drain
# How long a Python thread holding the GIL keeps it while another waits (CPython's
# default is 5 ms). The device callbacks need it within a fraction of a block; at 5 ms
# a busy GUI thread makes them late enough to underrun (measured: 250 output underflows
# in 15 s with one busy Python thread, 10 ms blocks; none at 1 ms).
_GIL_SWITCH_S = 0.001
_RING_SECONDS = 10
# The ALSA devices that are the sound server itself (PortAudio's view of it).
_SERVER_DEVICE_NAMES = ("pulse", "default", "pipewire")
_CAPTURE_RING_S = 2.0  # captured audio the engine thread may fall behind before overflow


@dataclass(frozen=True, slots=True)
class AudioCounters:
    overflows: int  # captured audio lost (PortAudio input overflow or capture ring lapped)
    underruns: int  # reply audio ran dry mid-reply (played as faded silence)
    frames_delivered: int
    frames_suppressed: int  # captured while the reply played (half duplex)
    device_errors: int
    playout_dropped_samples: int
    playout_trimmed_samples: int = 0  # dropped, cross-faded, to shrink the reply's delay
    # The output device ran dry (PortAudio's output underflow): a gap at the speaker. Through
    # ALSA's pulse plugin PortAudio recovers by starting the server stream anew.
    device_underflows: int = 0


@dataclass(frozen=True, slots=True)
class AudioLevels:
    input_rms_dbfs: float
    input_peak_dbfs: float
    output_rms_dbfs: float
    output_peak_dbfs: float


class _EngineThread(QThread):
    def __init__(self, body: Callable[[], None]) -> None:
        super().__init__()
        self._body = body
        self.setObjectName("emodesk-audio")

    def run(self) -> None:
        self._body()


class AudioEngine:
    """PyAudio capture and playback behind the `AudioPort` protocol."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, settings: AudioSettings | None = None
    ) -> None:
        self._loop = loop
        self.settings = settings or AudioSettings()
        s = self.settings
        self.frame_samples = s.frame_samples

        # For the UI plots: processed capture at 16 kHz, played reply at `reply_rate`.
        self.mic_ring = RingBuffer(MIC_RATE * _RING_SECONDS, np.int16)
        self.reply_ring = RingBuffer(REPLY_RATE * _RING_SECONDS, np.int16)
        self.reply_rate = REPLY_RATE

        self._on_frame: Callable[[bytes], None] | None = None
        self._on_playback_started: Callable[[float], None] | None = None
        self._on_error: Callable[[str, DeviceSide], None] | None = None  # (message, side)
        self._on_info: Callable[[str, DeviceSide], None] | None = None  # (message, side)

        # Work handed to the engine thread.
        self._wake = threading.Event()
        self._commands: deque[tuple[Callable[[], None], DeviceSide]] = deque()  # (step, side)
        self._play_queue: deque[tuple[bytes, int, float]] = deque()
        self._play_lock = threading.Lock()  # orders playout writes against flush()
        self._flush_generation = 0
        self._capture_generation = 0  # frames from an older capture are not delivered
        self._stopping = False
        self._thread: _EngineThread | None = None

        # Owned by the engine thread.
        self._pa: pyaudio.PyAudio | None = None
        self._in_stream: Any = None
        self._out_stream: Any = None
        self._in_device: DeviceInfo | None = None
        self._out_device: DeviceInfo | None = None
        self._in_rate = MIC_RATE
        self._out_rate = REPLY_RATE
        self._capture_ring = RingBuffer(int(MIC_RATE * _CAPTURE_RING_S), np.int16)
        self._far_ring = RingBuffer(REPLY_RATE, np.int16)
        self._in_resampler: StreamResampler | None = None
        self._far_resampler: StreamResampler | None = None
        # AEC pairing by the devices' clocks: each stream's newest block (set by its
        # callback); the 16 kHz indices of the next far-end sample and of `_pending`,
        # counted from what was resampled (a resampler gives its output in bursts); the
        # ring index each stream's next read should start at (else some was lost).
        self._alignment = EchoAlignment()
        self._out_clock: BlockClock | None = None
        self._in_clock: BlockClock | None = None
        self._far_at = 0
        self._far_next = 0
        self._pending_at = 0
        self._captured_next = 0
        self._out_resamplers: dict[int, StreamResampler] = {}
        self._pending = _EMPTY
        self._processor = CaptureProcessor(s)
        # AEC while the echo mode in force is full duplex: the configured mode, or full
        # duplex while hands-free (set_hands_free); None is half duplex.
        self._echo: EchoCanceller | None = None
        self._use_echo_mode(s.echo_mode)
        self._playout = _playout_buffer(REPLY_RATE, s)
        self._reported_start: float | None = None
        self._out_latency = 0.0  # the output stream's latency, read once per open
        self._in_latency = 0.0  # the input stream's, likewise
        self._next_watchdog = 0.0
        self._input_held = False  # prepare_capture: keep the input open between turns
        self._delivery_generation: int | None = None  # frames go to on_frame (a turn)
        # The newest frames before a press, with their callback time; never echo of a reply.
        self._preroll: deque[tuple[Int16Array, float]] = deque(maxlen=s.preroll_frames)
        self._failed = False

        # Written by callbacks (plain int/float stores).
        self._input_overflow_flags = 0
        self._output_underflow_flags = 0
        self._last_in_callback = 0.0
        self._last_out_callback = 0.0
        self._last_reply_audio = -1e9  # when the output callback last played reply audio
        self._far_until = 0.0  # server output: when the far end's newest sample sounds
        self._far_zeros = np.zeros(0, dtype=np.int16)
        self._silence: tuple[int, bytes, Int16Array] = (0, b"", np.zeros(0, dtype=np.int16))

        self._frames_delivered = 0
        self._frames_suppressed = 0
        self._device_errors = 0

        self.observer: AudioObserver | None = None  # measurement hooks (the benchmark)

    # ---- AudioPort ------------------------------------------------------------------

    def prepare_capture(self) -> None:
        """Open the input device now and keep it open until `release_capture` (idempotent).
        A device that cannot open is reported through `on_error`."""
        self._post(self._hold_input)

    def release_capture(self) -> None:
        """Close the input device (after the current turn, if one is being captured)."""
        self._post(self._release_input)

    def start_capture(self, on_frame: Callable[[bytes], None]) -> None:
        """Deliver frames to `on_frame` (on the loop): the pre-roll first, then live ones."""
        self._on_frame = on_frame
        self._capture_generation += 1
        generation = self._capture_generation
        self._post(lambda: self._begin_delivery(generation))

    def stop_capture(self) -> None:
        self._on_frame = None
        self._capture_generation += 1
        self._post(self._end_delivery)

    def play(self, pcm: bytes, rate: int = REPLY_RATE) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if len(pcm) % 2:
            raise ValueError("PCM16 audio must have an even number of bytes")
        if not pcm:
            return
        self._play_queue.append((pcm, rate, time.monotonic()))
        self._ensure_thread()
        self._wake.set()

    def flush(self) -> float:
        """Silence the reply now; returns the seconds dropped unheard (queued and
        buffered; the device's own few ms are not counted)."""
        with self._play_lock:
            self._flush_generation += 1
            queued = sum(len(pcm) / 2 / rate for pcm, rate, _ in self._play_queue)
            self._play_queue.clear()
            playout = self._playout
            buffered = playout.clear() / playout.rate
        # What the device already holds is dropped by reopening the output stream.
        self._post(self._restart_output, "output")
        return queued + buffered

    def set_listeners(
        self,
        on_playback_started: Callable[[float], None] | None = None,
        on_error: Callable[[str, DeviceSide], None] | None = None,
        on_info: Callable[[str, DeviceSide], None] | None = None,
    ) -> None:
        self._on_playback_started = on_playback_started
        self._on_error = on_error
        self._on_info = on_info

    # ---- lifecycle and state for the UI ---------------------------------------------

    def start(self) -> None:
        """Start the engine thread and open the output device (play() does it lazily)."""
        if sys.getswitchinterval() > _GIL_SWITCH_S:  # process-wide: see _GIL_SWITCH_S
            sys.setswitchinterval(_GIL_SWITCH_S)
        self._ensure_thread()

    def close(self, timeout_s: float = 3.0) -> None:
        """Close the devices and stop the engine thread (waits at most `timeout_s`)."""
        self._on_frame = None
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and not thread.wait(int(timeout_s * 1000)):
            log.error("audio engine thread did not stop within %.1f s", timeout_s)

    @property
    def counters(self) -> AudioCounters:
        return AudioCounters(
            overflows=self._input_overflow_flags + self._capture_ring.dropped,
            underruns=self._playout.underruns,
            frames_delivered=self._frames_delivered,
            frames_suppressed=self._frames_suppressed,
            device_errors=self._device_errors,
            playout_dropped_samples=self._playout.dropped_samples,
            playout_trimmed_samples=self._playout.trimmed_samples,
            device_underflows=self._output_underflow_flags,
        )

    @property
    def playout_target_ms(self) -> float:
        """How long a reply now waits before it plays (the adaptive playout target)."""
        return self._playout.target_ms

    def levels(self) -> AudioLevels:
        """Input and output level over the newest frame, for the meters."""
        mic = self.mic_ring.latest(self.frame_samples)
        reply = self.reply_ring.latest(self.reply_rate * self.settings.frame_ms // 1000)
        return AudioLevels(rms_dbfs(mic), peak_dbfs(mic), rms_dbfs(reply), peak_dbfs(reply))

    @property
    def reply_active(self) -> bool:
        """Reply audio is queued or playing, or stopped less than the tail ago."""
        return self._reply_active(time.monotonic())

    @property
    def input_device(self) -> DeviceInfo | None:
        return self._in_device

    @property
    def output_device(self) -> DeviceInfo | None:
        return self._out_device

    @property
    def input_open(self) -> bool:
        """The input device is open (prepared, or capturing a turn)."""
        return self._in_stream is not None

    @property
    def input_rate(self) -> int:
        """The rate the input device was opened at (frames are always 16 kHz)."""
        return self._in_rate

    @property
    def output_rate(self) -> int:
        return self._out_rate

    @property
    def _pumping(self) -> bool:
        """A reply is buffered for the sound server's stream: the engine thread keeps
        its queue topped up, a block at a time."""
        playout = self._playout
        return isinstance(self._out_stream, ServerOutput) and (playout.depth > 0 or playout.playing)

    @property
    def server_output(self) -> bool:
        """Replies go straight to the sound server (`server_output`), not through PortAudio."""
        return isinstance(self._out_stream, ServerOutput)

    def set_hands_free(self, enabled: bool) -> None:
        """Hands-free turns are ended and interrupted by voice, so the microphone cannot be
        held while the reply plays: the reply's echo is cancelled instead (full duplex with
        AEC) while enabled; the configured echo mode applies otherwise."""
        mode: EchoMode = "full_duplex_aec" if enabled else self.settings.echo_mode
        self._post(lambda: self._use_echo_mode(mode))

    def _use_echo_mode(self, mode: EchoMode) -> None:
        if (mode == "full_duplex_aec") == (self._echo is not None):
            return
        if mode == "full_duplex_aec":
            self._far_ring.clear()  # what played before AEC was on is not its far end
            self._far_resampler = None
            self._in_clock = self._out_clock = None
            self._alignment.reset()
            self._echo = EchoCanceller(self.settings.aec_stream_delay_ms)
        else:
            self._echo = None

    # ---- loop-thread helpers ----------------------------------------------------------

    def _post(self, command: Callable[[], None], side: DeviceSide = "input") -> None:
        self._commands.append((command, side))
        self._ensure_thread()
        self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stopping:
            self._thread = _EngineThread(self._run)
            self._thread.start()

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        # A closed loop raises RuntimeError: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    def _report_error(self, message: str, side: DeviceSide) -> None:
        log.warning("audio (%s): %s", side, message)
        if self._on_error is not None:
            self._to_loop(self._on_error, message, side)

    def _report_info(self, message: str, side: DeviceSide) -> None:
        """The device works, just not as configured, or again after a failure."""
        log.info("audio (%s): %s", side, message)
        if self._on_info is not None:
            self._to_loop(self._on_info, message, side)

    def _deliver(self, generation: int, frame: bytes) -> None:
        on_frame = self._on_frame
        if on_frame is None or generation != self._capture_generation:
            return
        on_frame(frame)

    # ---- PortAudio callbacks: copy only --------------------------------------------

    def _input_callback(self, in_data: bytes | None, frames: int, t: Any, status: int) -> Any:
        now = time.monotonic()
        if status & pyaudio.paInputOverflow:
            self._input_overflow_flags += 1
        if in_data:
            ring = self._capture_ring
            if self._echo is not None:
                self._in_clock = BlockClock(
                    ring.total_written,
                    _time_of(t, "input_buffer_adc_time"),
                    _captured_at(t, now, self._in_latency + frames / self._in_rate),
                )
            ring.write(np.frombuffer(in_data, dtype=np.int16))
        self._last_in_callback = now
        if self._delivery_generation is not None:
            self._wake.set()
        return (None, pyaudio.paContinue)

    def _output_callback(self, _in: bytes | None, frames: int, t: Any, status: int) -> Any:
        now = time.monotonic()
        self._last_out_callback = now
        if status & pyaudio.paOutputUnderflow:
            self._output_underflow_flags += 1
        playout = self._playout
        if playout.depth == 0 and not playout.playing:
            # Nothing to play, the usual case: the same silence block every time.
            count, silence, zeros = self._silence
            if count != frames:
                zeros = np.zeros(frames, dtype=np.int16)
                silence = zeros.tobytes()
                self._silence = (frames, silence, zeros)
            if self._echo is not None and self._in_stream is not None:
                # AEC3 wants far and near end in lockstep, silence included: skipping it
                # while quiet cost 20-40 dB of echo reduction (bench_audio).
                self._record_far(zeros, _time_of(t, "output_buffer_dac_time"), now)
            return (silence, pyaudio.paContinue)
        out = np.empty(frames, dtype=np.int16)
        self._take_reply(playout, out, now)
        if self._echo is not None and self._in_stream is not None:
            # silence after the reply's end included
            self._record_far(out, _time_of(t, "output_buffer_dac_time"), now)
        return (out.tobytes(), pyaudio.paContinue)

    def _take_reply(self, playout: PlayoutBuffer, out: Int16Array, now: float) -> int:
        """Fill `out` from the playout buffer for the device; returns the audio samples."""
        consumed = playout.consumed
        got = playout.read_into(out)
        if got:
            if self.observer is not None:  # samples of the reply used, trimmed ones too
                self.observer.reply_played(playout.consumed - consumed, now)
            self._last_reply_audio = now
            self.reply_ring.write(out)
            if playout.started_at != self._reported_start:
                self._wake.set()
        return got

    def _record_far(self, block: Int16Array, dac_time: float, now: float) -> None:
        ring = self._far_ring
        self._out_clock = BlockClock(ring.total_written, dac_time, now + self._out_latency)
        ring.write(block)

    # ---- the sound server's write callback (its thread) or kick (the engine thread) ---

    def _server_fill(self, frames: int, sounds_at: float, queued_s: float) -> Int16Array | None:
        """The next block for the sound server's queue, or None: nothing to write now."""
        now = time.monotonic()
        playout = self._playout
        aec = self._echo is not None and self._in_stream is not None
        if playout.depth == 0 and not playout.playing:
            if aec:
                self._far_silence(sounds_at)
            return None
        if playout.playing and playout.depth < frames:
            # What there is goes as it is: the server's queue is the buffer now, and the
            # playout buffer runs dry (an underrun, with its fades) only when it does.
            if playout.depth == 0 and queued_s > 0:
                return None
            frames = max(playout.depth, frames if playout.depth == 0 else 0)
        out = np.empty(frames, dtype=np.int16)
        if not self._take_reply(playout, out, now) and not playout.playing:
            if aec:
                self._far_silence(sounds_at)
            return None
        if aec:
            self._far_silence(sounds_at)
            self._record_far_at(out, sounds_at)
        return out

    def _far_silence(self, until: float) -> None:
        """While nothing plays the far end is silence: written up to `until` (at most
        0.1 s at a time), so the canceller's reference keeps in step with the microphone."""
        rate = self._out_rate
        n = min(round((until - self._far_until) * rate), rate // 10)
        if n > 0:
            self._record_far_at(self._zeros(n), until - n / rate)

    def _record_far_at(self, block: Int16Array, sounds_at: float) -> None:
        ring = self._far_ring
        # No DAC time on PortAudio's clock here: the alignment pairs by the estimates.
        self._out_clock = BlockClock(ring.total_written, 0.0, sounds_at)
        ring.write(block)
        self._far_until = sounds_at + block.size / self._out_rate

    def _zeros(self, n: int) -> Int16Array:
        if self._far_zeros.size < n:
            self._far_zeros = np.zeros(n, dtype=np.int16)
        return self._far_zeros[:n]

    def _count_output_underflow(self) -> None:
        """The server's queue ran dry: a gap at the speaker if reply audio was waiting."""
        if self._playout.depth > 0:
            self._output_underflow_flags += 1

    # ---- engine thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._safely(self._open_output, "output")
            while not self._stopping:
                capturing = self._in_stream is not None and self._delivery_generation is None
                wait = _METER_PERIOD_S if capturing else _IDLE_WAIT_S
                if self._pumping:
                    starts_in = self._playout.starts_in_s()
                    wait = _OUTPUT_BLOCK_MS / 1000 if starts_in is None else starts_in
                self._wake.wait(wait)
                self._wake.clear()
                while self._commands:
                    self._safely(*self._commands.popleft())
                self._safely(self._feed_playout, "output")
                if self._pumping:  # new reply audio plays as soon as the target allows
                    self._out_stream.kick()
                self._drain_capture()
                self._report_playback_start()
                now = time.monotonic()
                if now >= self._next_watchdog:
                    self._next_watchdog = now + _WATCHDOG_PERIOD_S
                    self._watchdog()
        except Exception as exc:  # never let the thread die silently
            log.exception("audio engine failed")
            # The thread is gone, and the microphone with it.
            self._report_error(f"audio engine stopped: {exc}", "input")
        finally:
            self._close_streams()
            self._terminate_portaudio()

    def _safely(self, step: Callable[[], None], side: DeviceSide) -> None:
        """Run a device step on `side`; a device that cannot open is reported, not fatal."""
        try:
            step()
        except (AudioDeviceError, OSError) as exc:
            self._device_errors += 1
            self._failed = True
            self._report_error(str(exc), side)

    def _portaudio(self) -> pyaudio.PyAudio:
        if self._pa is None:
            self._pa = open_portaudio()
        return self._pa

    def _terminate_portaudio(self) -> None:
        if self._pa is not None:
            self._pa.terminate()
            self._pa = None

    def _open_output(self) -> None:
        pa = self._portaudio()
        chosen = choose_stream_device(pa, self.settings.output_device, "output")
        device = chosen.device
        if chosen.note:
            self._report_info(chosen.note, "output")
        if self.settings.server_output and _is_the_server(chosen):
            try:
                self._open_server_output(chosen)
                return
            except AudioDeviceError as exc:
                log.info("replies through PortAudio: %s", exc)
        wanted = self.settings.output_device_rate
        rates = [wanted] if wanted else [REPLY_RATE, round(device.default_rate)]
        last_error: Exception | None = None
        for rate in dict.fromkeys(rates):
            try:
                with routed(chosen.server_device, "output"):
                    stream = pa.open(
                        format=pyaudio.paInt16,
                        channels=1,
                        rate=rate,
                        output=True,
                        output_device_index=device.index,
                        frames_per_buffer=rate * _OUTPUT_BLOCK_MS // 1000,
                        stream_callback=self._output_callback,
                        start=False,
                    )
            except (OSError, ValueError) as exc:
                last_error = exc
                continue
            if rate != self._out_rate:
                self._set_output_rate(rate)
            self._playout.set_device_queue(_OUTPUT_BLOCK_MS)
            self._out_device = device
            self._out_stream = stream
            self._out_latency = _stream_latency(stream, "output")
            self._last_out_callback = time.monotonic()
            stream.start_stream()
            return
        raise AudioDeviceError(f"cannot open output device {device.name!r}: {last_error}")

    def _open_server_output(self, chosen: StreamDevice) -> None:
        rate = self.settings.output_device_rate or REPLY_RATE
        stream = ServerOutput(
            rate,
            self._server_fill,
            sink=chosen.server_device,
            on_underflow=self._count_output_underflow,
        )
        if rate != self._out_rate:
            self._set_output_rate(rate)
        # Kept up to the queue ahead, and a block beyond it between two top-ups.
        self._playout.set_device_queue(stream.queue_s * 1000 + _OUTPUT_BLOCK_MS)
        self._out_device = chosen.device
        self._out_stream = stream
        self._out_latency = stream.latency_s
        stream.kick()  # a reply buffered while the output was closed

    def _set_output_rate(self, rate: int) -> None:
        self._out_rate = rate
        self.reply_rate = rate
        self.reply_ring = RingBuffer(rate * _RING_SECONDS, np.int16)
        self._far_ring = RingBuffer(rate, np.int16)
        self._far_resampler = None
        self._out_resamplers.clear()
        with self._play_lock:
            self._playout.clear()
            self._playout = _playout_buffer(rate, self.settings)

    @property
    def _input_wanted(self) -> bool:
        return self._input_held or self._delivery_generation is not None

    def _hold_input(self) -> None:
        self._input_held = True
        self._failed = False  # an explicit request tries the devices again
        self._open_capture()

    def _release_input(self) -> None:
        self._input_held = False
        if self._delivery_generation is None:
            self._close_capture()

    def _begin_delivery(self, generation: int) -> None:
        self._delivery_generation = None  # frames processed below go to the pre-roll
        self._failed = False
        if self._in_stream is None:
            self._delivery_generation = generation  # wanted, even if the open fails
            self._open_capture()
            return
        self._drain_capture()  # what the device gave us up to the press
        for frame, t_callback in self._preroll:
            self._post_frame(generation, frame, t_callback)
        self._preroll.clear()
        self._delivery_generation = generation

    def _end_delivery(self) -> None:
        self._delivery_generation = None
        self._preroll.clear()  # frames of this turn are not the next turn's pre-roll
        if not self._input_held:
            self._close_capture()

    def _open_capture(self) -> None:
        if self._in_stream is not None:
            return
        pa = self._portaudio()
        chosen = choose_stream_device(pa, self.settings.input_device, "input")
        device = chosen.device
        if chosen.note:
            self._report_info(chosen.note, "input")
        wanted = self.settings.input_device_rate
        rates = [wanted] if wanted else [MIC_RATE, round(device.default_rate)]
        last_error: Exception | None = None
        for rate in dict.fromkeys(rates):
            block = rate * self.settings.frame_ms // 1000
            try:
                with routed(chosen.server_device, "input"):
                    stream = pa.open(
                        format=pyaudio.paInt16,
                        channels=1,
                        rate=rate,
                        input=True,
                        input_device_index=device.index,
                        frames_per_buffer=block,
                        stream_callback=self._input_callback,
                        start=False,
                    )
            except (OSError, ValueError) as exc:
                last_error = exc
                continue
            self._in_rate = rate
            self._in_resampler = StreamResampler(rate, MIC_RATE) if rate != MIC_RATE else None
            self._capture_ring = RingBuffer(int(rate * _CAPTURE_RING_S), np.int16)
            self._pending = _EMPTY
            self._pending_at = self._captured_next = 0
            self._in_clock = None
            self._alignment.reset()
            self._in_device = device
            self._in_stream = stream
            self._in_latency = _stream_latency(stream, "input")
            self._far_ring.clear()  # played while no input was open: nothing to pair with
            self._last_in_callback = time.monotonic()
            stream.start_stream()
            return
        raise AudioDeviceError(f"cannot open input device {device.name!r}: {last_error}")

    def _close_capture(self) -> None:
        stream, self._in_stream = self._in_stream, None
        if stream is not None:
            _close_quietly(stream)
        self._pending = _EMPTY
        self._preroll.clear()
        self._capture_ring.read_new()  # discard what was not yet framed
        self._in_clock = None
        self._alignment.reset()
        if self._echo is not None:
            self._echo.reset()

    def _restart_output(self) -> None:
        """Drop what the device holds. Aborting (Pa_AbortStream discards the device's
        buffers) and restarting keeps the stream: a freshly opened one can take from
        milliseconds to seconds before a sound server plays it, which delayed the next
        reply after a barge-in."""
        for r in self._out_resamplers.values():
            r.flush()
        stream = self._out_stream
        if isinstance(stream, ServerOutput):
            stream.flush()
            self._far_until = time.monotonic()  # what the far end held ahead never plays
            self._cut_reply_tail()
            return
        try:
            if stream is not None:
                try:
                    _abort_and_restart(stream)
                    self._last_out_callback = time.monotonic()
                    return
                except (OSError, AttributeError) as exc:
                    log.info("restarting the output stream failed (%s); reopening it", exc)
                    self._out_stream = None
                    _close_quietly(stream)
            self._open_output()
        finally:
            self._cut_reply_tail()

    def _cut_reply_tail(self) -> None:
        """After a flush nothing plays, so there is no echo: the half-duplex tail need not
        wait. Audio captured while the reply still played is suppressed first."""
        self._drain_capture()
        self._last_reply_audio = -1e9

    def _close_streams(self) -> None:
        for name in ("_in_stream", "_out_stream"):
            stream = getattr(self, name)
            setattr(self, name, None)
            if stream is not None:
                _close_quietly(stream)

    def _feed_playout(self) -> None:
        while self._play_queue:
            try:
                pcm, rate, t_play = self._play_queue.popleft()
            except IndexError:  # flushed meanwhile
                return
            generation = self._flush_generation
            samples = np.frombuffer(pcm, dtype=np.int16)
            if rate != self._out_rate:
                resampler = self._out_resamplers.get(rate)
                if resampler is None:
                    resampler = StreamResampler(rate, self._out_rate)
                    self._out_resamplers[rate] = resampler
                samples = resampler.process(samples)
            with self._play_lock:
                if generation != self._flush_generation:
                    continue  # a flush came while this chunk was being resampled
                self._playout.write(samples, arrived=t_play)
            if self.observer is not None:
                self.observer.reply_buffered(t_play, time.monotonic(), samples.size)
        if self._out_stream is None and not self._failed:
            self._open_output()

    def _drain_capture(self) -> None:
        if self._in_stream is None or self._capture_ring.available == 0:
            return  # the far end waits in its ring: nothing captured to pair it with
        if self._echo is not None:
            self._feed_far_end(self._echo)
        start, new = self._capture_ring.read_new_indexed()
        t_callback = self._last_in_callback
        if start != self._captured_next:  # audio lost to an overflow: index it afresh
            self._pending_at = start * MIC_RATE // self._in_rate - self._pending.size
        self._captured_next = start + new.size
        if self._in_resampler is not None:
            new = self._in_resampler.process(new)
        pending = np.concatenate((self._pending, new)) if self._pending.size else new
        n = self.frame_samples
        whole = pending.size // n
        held = self._echo is None and self._reply_active(time.monotonic())  # half duplex
        for i in range(whole):
            far_at = self._far_index(self._pending_at + i * n)
            self._process_frame(pending[i * n : (i + 1) * n], t_callback, held, far_at)
        self._pending_at += whole * n
        self._pending = pending[whole * n :].copy() if pending.size % n else _EMPTY

    def _far_index(self, captured: int) -> int | None:
        if self._echo is None:
            return None
        return self._alignment.far_index(
            captured, self._in_clock, self._in_rate, self._out_clock, self._out_rate
        )

    def _feed_far_end(self, echo: EchoCanceller) -> None:
        """Hand what the speaker played (silence included) to the AEC, by its index on
        the far end's 16 kHz counter."""
        if not self._far_ring.available:
            return
        start, far = self._far_ring.read_new_indexed()
        if start != self._far_next:  # a new ring, a cleared one, or some lost: afresh
            self._far_at = start * MIC_RATE // self._out_rate
            self._far_resampler = None
        self._far_next = start + far.size
        if self._out_rate != MIC_RATE:
            if self._far_resampler is None:
                # Low delay: a frame is paired with reference that sounded just after it
                # was captured, and what a high-quality filter still held (6-37 ms) was
                # paired as silence.
                self._far_resampler = StreamResampler(self._out_rate, MIC_RATE, low_delay=True)
            far = self._far_resampler.process(far)
        echo.push_far(far, self._far_at)
        self._far_at += far.size

    def _reply_active(self, now: float) -> bool:
        tail = self.settings.half_duplex_tail_ms / 1000 + self._out_latency
        return (
            self._playout.depth > 0 or bool(self._play_queue) or now - self._last_reply_audio < tail
        )

    def _process_frame(
        self, frame: Int16Array, t_callback: float, held: bool, far_at: int | None = None
    ) -> None:
        if self._echo is not None:
            frame = self._echo.process(frame, far_at)
        frame = self._processor.process(frame)
        self.mic_ring.write(frame)
        generation = self._delivery_generation
        if held:
            self._preroll.clear()  # the reply's echo must not open the next turn either
            if generation is not None:
                self._frames_suppressed += 1
            return
        if generation is None:
            self._preroll.append((frame, t_callback))
            return
        self._post_frame(generation, frame, t_callback)

    def _post_frame(self, generation: int, frame: Int16Array, t_callback: float) -> None:
        self._frames_delivered += 1
        if self.observer is not None:
            self.observer.frame_posted(t_callback)
        self._to_loop(self._deliver, generation, frame.tobytes())

    def _report_playback_start(self) -> None:
        started = self._playout.started_at
        if started is not None and started != self._reported_start:
            self._reported_start = started
            if self._on_playback_started is not None:
                self._to_loop(self._on_playback_started, started)

    # ---- failure and recovery ---------------------------------------------------------

    def _watchdog(self) -> None:
        now = time.monotonic()
        problems = []
        side: DeviceSide = "output"
        if self._in_stream is not None and (
            now - self._last_in_callback > _STALL_S or not self._in_stream.is_active()
        ):
            problems.append(f"input device {self._device_name(self._in_device)} stopped")
            side = "input"  # the worse of the two: it ends a turn being spoken
        if self._out_stream is not None and (
            # The server asks for nothing while it has no room; it is watched by its state.
            (
                not isinstance(self._out_stream, ServerOutput)
                and now - self._last_out_callback > _STALL_S
            )
            or not self._out_stream.is_active()
        ):
            problems.append(f"output device {self._device_name(self._out_device)} stopped")
        if problems:
            self._recover("; ".join(problems), side)

    @staticmethod
    def _device_name(device: DeviceInfo | None) -> str:
        return repr(device.name) if device is not None else "(none)"

    def _recover(self, reason: str, side: DeviceSide) -> None:
        """Reopen the devices (by name, else the default) with a fresh device list."""
        self._device_errors += 1
        self._report_error(f"{reason}; reopening", side)
        capture = self._input_wanted
        self._close_streams()
        self._terminate_portaudio()
        attempts = self.settings.recovery_attempts
        for attempt in range(attempts):
            if self._stopping:
                return
            try:
                self._open_output()
                if capture:
                    self._open_capture()
            except (AudioDeviceError, OSError) as exc:
                log.info("audio recovery attempt %d failed: %s", attempt + 1, exc)
                self._close_streams()
                self._terminate_portaudio()
                self._wake.wait(min(2.0, 0.2 * 2**attempt))  # back off; close() wakes us early
                continue
            self._report_info("audio devices reopened", side)
            return
        self._failed = True
        self._input_held = False
        self._delivery_generation = None
        self._report_error(f"audio stopped: devices did not reopen after {attempts} attempts", side)


_EMPTY: Int16Array = np.zeros(0, dtype=np.int16)


def _playout_buffer(rate: int, settings: AudioSettings) -> PlayoutBuffer:
    """Adaptive: from one output block plus the link's measured jitter, up to the
    setting (a ceiling)."""
    return PlayoutBuffer(rate, settings.playout_buffer_ms, period_ms=_OUTPUT_BLOCK_MS)


def _is_the_server(chosen: StreamDevice) -> bool:
    """The output goes to the sound server: one of its sinks, or PortAudio's device that
    is the server (where no server runs, opening it straight fails and PortAudio is used)."""
    return chosen.server_device is not None or chosen.device.name in _SERVER_DEVICE_NAMES


def _captured_at(time_info: Any, now: float, behind_s: float) -> float:
    """When an input block's first sample was captured, on the monotonic clock: its ADC
    time against PortAudio's current time where it gives both (a sound-server output,
    timed on the monotonic clock, is paired with it), else `behind_s` before now."""
    adc, current = _time_of(time_info, "input_buffer_adc_time"), _time_of(time_info, "current_time")
    return now - (current - adc) if adc > 0 and current > 0 else now - behind_s


def _time_of(time_info: Any, key: str) -> float:
    """A block's DAC or ADC time from PortAudio's `time_info`, 0.0 where it gives none."""
    try:
        return float(time_info[key]) if time_info else 0.0
    except (KeyError, TypeError, ValueError):
        return 0.0


def _stream_latency(stream: Any, side: DeviceSide) -> float:
    try:
        if side == "input":
            return float(stream.get_input_latency())
        return float(stream.get_output_latency())
    except OSError:
        return 0.0


def _abort_and_restart(stream: Any) -> None:
    """Pa_AbortStream (stop at once, discarding queued output), then Pa_StartStream.
    PyAudio's `Stream` only offers Pa_StopStream, which plays the queue out first; both
    calls go to its C module so the `Stream` object's own running flag stays true."""
    pyaudio._portaudio.abort_stream(stream._stream)
    pyaudio._portaudio.start_stream(stream._stream)


def _close_quietly(stream: Any) -> None:
    try:
        stream.close()
    except OSError as exc:  # a device that vanished may refuse even to close
        log.debug("closing an audio stream failed: %s", exc)
