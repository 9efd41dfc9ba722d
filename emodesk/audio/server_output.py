"""Reply audio straight to the sound server (PulseAudio, or PipeWire's PulseAudio side)
through libpulse, so that a reply's first sample sounds within a few milliseconds.

Through PortAudio and ALSA's pulse plugin an idle output still plays: its callbacks keep
three 10 ms blocks of silence queued at the server (fewer stall on a busy machine), and
a reply's first sample waits behind them, 30 ms, plus up to a block for the next
callback. This stream queues nothing while idle: with `prebuf` at one sample it stops
when its queue runs dry and starts again, at once and where it stopped, when a block is
written, which then sounds after the sink's own latency. (With `prebuf` 0 it would play
on through the silence, and a block written after it would land behind the read
position and be dropped, in part or whole.) While a reply plays the queue is kept up to
`queue_ms` ahead, a margin for a writer held back by the GIL that costs the first sample
nothing. A writer late anyway leaves a short gap, not the 2-second stall a PortAudio
stream's recovery causes on some sinks.

`fill(frames, sounds_at, queued_s)` is called on libpulse's thread (the write callback) or on
the caller's (`kick`), never both at once: it returns the next block to play, or None
when there is nothing to write now. `sounds_at` is when the
block's first sample will sound, on the monotonic clock; `queued_s`, how much the server
still has to play before it (0 when its queue ran dry).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from emodesk.audio.devices import AudioDeviceError

log = logging.getLogger(__name__)

Int16Array = np.ndarray[Any, np.dtype[np.int16]]
Fill = Callable[[int, float, float], "Int16Array | None"]

CONNECT_TIMEOUT_S = 2.0
BLOCK_MS = 10  # what one fill() returns: the playout buffer's read size
QUEUE_MS = 40  # how far ahead the server is kept once a reply plays (its tlength)

_PA_SAMPLE_S16LE = 3
_PA_CONTEXT_NOAUTOSPAWN = 0x1
_PA_CONTEXT_READY, _PA_CONTEXT_FAILED, _PA_CONTEXT_TERMINATED = 4, 5, 6
_PA_STREAM_READY, _PA_STREAM_FAILED, _PA_STREAM_TERMINATED = 2, 3, 4
# Timing interpolated between the server's updates, which come on their own; the sink's
# latency set from this stream's tlength (else a null sink renders 2 s ahead).
_PA_STREAM_FLAGS = 0x0002 | 0x0008 | 0x2000
_UNSET = 0xFFFFFFFF


class _SampleSpec(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8)]


class _BufferAttr(ctypes.Structure):
    _fields_ = [
        ("maxlength", ctypes.c_uint32),
        ("tlength", ctypes.c_uint32),
        ("prebuf", ctypes.c_uint32),
        ("minreq", ctypes.c_uint32),
        ("fragsize", ctypes.c_uint32),
    ]


class _TimeVal(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _TimingInfo(ctypes.Structure):
    _fields_ = [
        ("timestamp", _TimeVal),
        ("synchronized_clocks", ctypes.c_int),
        ("sink_usec", ctypes.c_uint64),
        ("source_usec", ctypes.c_uint64),
        ("transport_usec", ctypes.c_uint64),
        ("playing", ctypes.c_int),
        ("write_index_corrupt", ctypes.c_int),
        ("write_index", ctypes.c_int64),
        ("read_index_corrupt", ctypes.c_int),
        ("read_index", ctypes.c_int64),
        ("configured_sink_usec", ctypes.c_uint64),
        ("configured_source_usec", ctypes.c_uint64),
        ("since_underrun", ctypes.c_int64),
    ]


_Ptr = ctypes.c_void_p
_NOTIFY = ctypes.CFUNCTYPE(None, _Ptr, _Ptr)  # pa_context/pa_stream_notify_cb_t
_REQUEST = ctypes.CFUNCTYPE(None, _Ptr, ctypes.c_size_t, _Ptr)  # pa_stream_request_cb_t

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "pa_threaded_mainloop_new": (_Ptr, []),
    "pa_threaded_mainloop_get_api": (_Ptr, [_Ptr]),
    "pa_threaded_mainloop_start": (ctypes.c_int, [_Ptr]),
    "pa_threaded_mainloop_stop": (None, [_Ptr]),
    "pa_threaded_mainloop_free": (None, [_Ptr]),
    "pa_threaded_mainloop_lock": (None, [_Ptr]),
    "pa_threaded_mainloop_unlock": (None, [_Ptr]),
    "pa_context_new": (_Ptr, [_Ptr, ctypes.c_char_p]),
    "pa_context_connect": (ctypes.c_int, [_Ptr, ctypes.c_char_p, ctypes.c_int, _Ptr]),
    "pa_context_disconnect": (None, [_Ptr]),
    "pa_context_unref": (None, [_Ptr]),
    "pa_context_get_state": (ctypes.c_int, [_Ptr]),
    "pa_context_errno": (ctypes.c_int, [_Ptr]),
    "pa_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "pa_stream_new": (_Ptr, [_Ptr, ctypes.c_char_p, ctypes.POINTER(_SampleSpec), _Ptr]),
    "pa_stream_set_write_callback": (None, [_Ptr, _REQUEST, _Ptr]),
    "pa_stream_set_underflow_callback": (None, [_Ptr, _NOTIFY, _Ptr]),
    "pa_stream_connect_playback": (
        ctypes.c_int,
        [_Ptr, ctypes.c_char_p, ctypes.POINTER(_BufferAttr), ctypes.c_int, _Ptr, _Ptr],
    ),
    "pa_stream_get_state": (ctypes.c_int, [_Ptr]),
    "pa_stream_get_buffer_attr": (ctypes.POINTER(_BufferAttr), [_Ptr]),
    "pa_stream_get_timing_info": (ctypes.POINTER(_TimingInfo), [_Ptr]),
    "pa_stream_writable_size": (ctypes.c_size_t, [_Ptr]),
    "pa_stream_write": (
        ctypes.c_int,
        [_Ptr, _Ptr, ctypes.c_size_t, _Ptr, ctypes.c_int64, ctypes.c_int],
    ),
    "pa_stream_flush": (_Ptr, [_Ptr, _Ptr, _Ptr]),
    "pa_operation_unref": (None, [_Ptr]),
    "pa_stream_disconnect": (ctypes.c_int, [_Ptr]),
    "pa_stream_unref": (None, [_Ptr]),
}

_lib: Any = None
_lib_lock = threading.Lock()


def _libpulse() -> Any:
    """libpulse with the signatures used here; AudioDeviceError where it is missing."""
    global _lib
    with _lib_lock:
        if _lib is None:
            name = ctypes.util.find_library("pulse") or "libpulse.so.0"
            try:
                lib = ctypes.CDLL(name)
                for fn, (restype, argtypes) in _SIGNATURES.items():
                    f = getattr(lib, fn)
                    f.restype, f.argtypes = restype, argtypes
            except (OSError, AttributeError) as exc:
                raise AudioDeviceError(f"no PulseAudio client library: {exc}") from exc
            _lib = lib
        return _lib


class ServerOutput:
    """One mono PCM16 playback stream on the sound server. `sink`: the server's sink
    name (None: its default). Raises AudioDeviceError when there is no server to talk
    to or it refuses the stream."""

    def __init__(
        self,
        rate: int,
        fill: Fill,
        *,
        sink: str | None = None,
        queue_ms: int = QUEUE_MS,
        name: str = "EmoDesk",
        on_underflow: Callable[[], None] | None = None,
    ) -> None:
        self.rate = rate
        self._fill = fill
        self._on_underflow_hook = on_underflow
        self._block = rate * BLOCK_MS // 1000
        self._lib = _libpulse()
        # When what is queued will have been played, by our own count (the server tells
        # only now and then); what is written after it is late and restarts the stream.
        self._queued_until = 0.0
        self.queue_s = 0.0  # the queue the server grants (its tlength), once connected
        self._most_bytes = 0  # the most one kick writes
        # ctypes callbacks: kept alive as long as the stream.
        self._on_write_cb = _REQUEST(self._on_write)
        self._on_underflow_cb = _NOTIFY(self._on_underflow)
        self._mainloop: Any = None
        self._context: Any = None
        self._stream: Any = None
        try:
            self._connect(name.encode(), sink, queue_ms)
        except BaseException:
            self.close()
            raise

    # ---- set-up and tear-down ---------------------------------------------------------

    def _connect(self, name: bytes, sink: str | None, queue_ms: int) -> None:
        lib = self._lib
        self._mainloop = lib.pa_threaded_mainloop_new()
        if not self._mainloop:
            raise AudioDeviceError("libpulse could not make its main loop")
        self._context = lib.pa_context_new(lib.pa_threaded_mainloop_get_api(self._mainloop), name)
        if lib.pa_context_connect(self._context, None, _PA_CONTEXT_NOAUTOSPAWN, None) < 0:
            raise AudioDeviceError(f"no sound server: {self._error()}")
        if lib.pa_threaded_mainloop_start(self._mainloop) < 0:
            raise AudioDeviceError("libpulse could not start its main loop")
        self._wait_for(
            lambda: lib.pa_context_get_state(self._context),
            _PA_CONTEXT_READY,
            (_PA_CONTEXT_FAILED, _PA_CONTEXT_TERMINATED),
            "the sound server",
        )
        spec = _SampleSpec(_PA_SAMPLE_S16LE, self.rate, 1)
        attr = _BufferAttr(
            _UNSET,
            self.rate * 2 * queue_ms // 1000,
            2,  # prebuf one sample: see the module's docstring
            self._block * 2,
            _UNSET,
        )
        self._lock()
        try:
            self._stream = lib.pa_stream_new(self._context, b"reply", ctypes.byref(spec), None)
            if not self._stream:
                raise AudioDeviceError(f"the sound server refused a stream: {self._error()}")
            lib.pa_stream_set_write_callback(self._stream, self._on_write_cb, None)
            lib.pa_stream_set_underflow_callback(self._stream, self._on_underflow_cb, None)
            device = sink.encode() if sink else None
            connected = lib.pa_stream_connect_playback(
                self._stream, device, ctypes.byref(attr), _PA_STREAM_FLAGS, None, None
            )
            if connected < 0:
                where = sink or "the default sink"
                raise AudioDeviceError(f"cannot play to {where}: {self._error()}")
        finally:
            self._unlock()
        self._wait_for(
            lambda: lib.pa_stream_get_state(self._stream),
            _PA_STREAM_READY,
            (_PA_STREAM_FAILED, _PA_STREAM_TERMINATED),
            f"a stream to {sink or 'the default sink'}",
        )
        self._lock()
        try:
            got = lib.pa_stream_get_buffer_attr(self._stream).contents
            self.queue_s = float(got.tlength) / 2 / self.rate
            self._most_bytes = int(got.tlength) + self._block * 2
        finally:
            self._unlock()

    def _wait_for(
        self, state: Callable[[], int], ready: int, failed: tuple[int, ...], what: str
    ) -> None:
        # Polled rather than waited on: a server that accepts the socket and then says
        # nothing must not hang the engine thread.
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            self._lock()
            try:
                now_state = state()
            finally:
                self._unlock()
            if now_state == ready:
                return
            if now_state in failed:
                raise AudioDeviceError(f"cannot connect to {what}: {self._error()}")
            if time.monotonic() > deadline:
                raise AudioDeviceError(f"{what} did not answer within {CONNECT_TIMEOUT_S:.0f} s")
            time.sleep(0.002)

    def close(self) -> None:
        lib = self._lib
        if self._mainloop is None:
            return
        if self._stream or self._context:
            self._lock()
            try:
                if self._stream:
                    lib.pa_stream_disconnect(self._stream)
                    lib.pa_stream_unref(self._stream)
                    self._stream = None
                if self._context:
                    lib.pa_context_disconnect(self._context)
                    lib.pa_context_unref(self._context)
                    self._context = None
            finally:
                self._unlock()
        lib.pa_threaded_mainloop_stop(self._mainloop)  # not with the lock held
        lib.pa_threaded_mainloop_free(self._mainloop)
        self._mainloop = None

    def _lock(self) -> None:
        self._lib.pa_threaded_mainloop_lock(self._mainloop)

    def _unlock(self) -> None:
        self._lib.pa_threaded_mainloop_unlock(self._mainloop)

    def _error(self) -> str:
        if not self._context:
            return "unknown error"
        message = self._lib.pa_strerror(self._lib.pa_context_errno(self._context))
        return message.decode(errors="replace") if message else "unknown error"

    # ---- state ------------------------------------------------------------------------

    def is_active(self) -> bool:
        """The server and the stream are still there."""
        if self._stream is None or self._context is None:
            return False
        self._lock()
        try:
            return bool(
                self._lib.pa_context_get_state(self._context) == _PA_CONTEXT_READY
                and self._lib.pa_stream_get_state(self._stream) == _PA_STREAM_READY
            )
        finally:
            self._unlock()

    @property
    def latency_s(self) -> float:
        """The most a written sample waits before it sounds: the queue, and the sink's
        latency as configured for this stream."""
        self._lock()
        try:
            info = self._lib.pa_stream_get_timing_info(self._stream)
            sink = float(info.contents.configured_sink_usec) / 1e6 if info else 0.0
        finally:
            self._unlock()
        return self.queue_s + sink

    def _sink_latency_s(self) -> float:
        """How far the sink renders ahead now: a sample written to an empty queue sounds
        this much later (the main loop's lock held)."""
        info = self._lib.pa_stream_get_timing_info(self._stream)
        return float(info.contents.sink_usec) / 1e6 if info else 0.0

    # ---- writing ----------------------------------------------------------------------

    def kick(self) -> None:
        """Write what `fill` has now, up to `queue_ms` ahead: called from any thread but
        libpulse's, when reply audio arrives and while a reply plays. The server's own
        requests are not relied on: it does not repeat one left unanswered."""
        if self._stream is None:
            return
        self._lock()
        try:
            self._write_locked(self._most_bytes)
        finally:
            self._unlock()

    def flush(self) -> None:
        """Drop everything queued at the server: silence within the sink's latency."""
        if self._stream is None:
            return
        self._lock()
        try:
            operation = self._lib.pa_stream_flush(self._stream, None, None)
            if operation:
                self._lib.pa_operation_unref(operation)
            self._queued_until = 0.0
        finally:
            self._unlock()

    def _on_write(self, _stream: Any, nbytes: int, _userdata: Any) -> None:
        try:
            self._write_locked(nbytes)
        except Exception:  # an exception must not unwind into libpulse
            log.exception("reply output failed")

    def _on_underflow(self, _stream: Any, _userdata: Any) -> None:
        if self._on_underflow_hook is not None:
            self._on_underflow_hook()

    def _write_locked(self, nbytes: int) -> None:
        """Blocks from `fill` until `nbytes` are written, `queue_ms` is queued, or it has
        nothing (the main loop's lock held)."""
        lib = self._lib
        now = time.monotonic()
        sink = self._sink_latency_s()
        while nbytes >= 2:
            frames = min(self._block, nbytes // 2)
            queued = max(0.0, self._queued_until - now)
            if queued >= self.queue_s:
                return  # enough queued; a request after a long idle asks for seconds
            block = self._fill(frames, now + queued + sink, queued)
            if block is None:
                return
            data = np.ascontiguousarray(block, dtype=np.int16)
            if lib.pa_stream_write(self._stream, data.ctypes.data, data.nbytes, None, 0, 0) < 0:
                log.warning("writing reply audio failed: %s", self._error())
                return
            self._queued_until = now + queued + data.size / self.rate
            nbytes -= data.nbytes
