"""A private PulseAudio server with null sinks: a real audio stack without a sound card.

Each `PulseStack` runs its own server with its own runtime/state dirs and socket, so
several test sessions (and other helpers) can run PulseAudio side by side. Clients
(PortAudio through ALSA's pulse plugin, paplay, parec, pactl) find it through
`PULSE_SERVER`, which `start()` sets in `os.environ`; create `PyAudio` only after that,
since PortAudio reads the device list once when it initialises.

Sinks: `spk` is the app's speaker (default sink); `mic` is a sink whose monitor is the
app's microphone (default source `mic.monitor`), so `play_into_mic` speaks to the app
and `record_speaker` hears it.

Speaker sinks do not rewind (`SPEAKER_SINK_ARGS`). A null sink that rewinds, to play a
stream that starts again at once (the sound server's own output does at every reply),
renders again the few ms its monitor has already sent, and the monitor drops what was
rendered anew: the reply's first 10-20 ms never reach a recorder. Without rewinds the
sink plays it after what it has rendered ahead (a few ms with a listener at 5 ms), and
the monitor hears every sample once, as a speaker would. A sound card's sink rewinds its
own buffer, so a reply there starts no later than here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

BINARIES = ("pulseaudio", "pactl", "paplay", "parec")
SPEAKER_SINK_ARGS = ("rate=48000", "norewinds=1")  # see the module's docstring
_ENV_KEYS = ("PULSE_SERVER", "PULSE_RUNTIME_PATH", "PULSE_STATE_PATH", "PULSE_COOKIE")


class PulseUnavailable(RuntimeError):
    """The PulseAudio binaries are not installed."""


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


class PulseStack:
    def __init__(self) -> None:
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def server(self) -> str:
        assert self.dir is not None, "PulseStack not started"
        return f"unix:{self.dir / 'native'}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self._client_env())
        return env

    def _client_env(self) -> dict[str, str]:
        assert self.dir is not None
        return {
            "PULSE_SERVER": self.server,
            "PULSE_RUNTIME_PATH": str(self.dir / "runtime"),
            "PULSE_STATE_PATH": str(self.dir / "state"),
            "PULSE_COOKIE": str(self.dir / "cookie"),
        }

    def start(self, timeout_s: float = 10.0) -> PulseStack:
        missing = missing_binaries()
        if missing:
            raise PulseUnavailable(f"PulseAudio binaries missing: {', '.join(missing)}")
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="emodesk-pulse-"))
        for sub in ("runtime", "state", "home"):
            (self.dir / sub).mkdir(exist_ok=True)
        (self.dir / "native").unlink(missing_ok=True)
        env = self.env()
        env["HOME"] = str(self.dir / "home")  # keeps ~/.config/pulse of the user untouched
        socket_path = self.dir / "native"
        self.process = subprocess.Popen(
            [
                "pulseaudio",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--system=no",
                "-n",
                f"--load=module-native-protocol-unix socket={socket_path} auth-anonymous=1",
                f"--load=module-null-sink sink_name=spk {' '.join(SPEAKER_SINK_ARGS)}",
                "--load=module-null-sink sink_name=mic rate=48000",
                f"--log-target=file:{self.dir / 'pulse.log'}",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                log = (self.dir / "pulse.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"pulseaudio exited with {self.process.returncode}: {log}")
            ok = socket_path.exists() and self._pactl_ok("info")
            if ok:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("pulseaudio did not come up")
            time.sleep(0.05)
        self.pactl("set-default-sink", "spk")
        self.pactl("set-default-source", "mic.monitor")
        for key, value in self._client_env().items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def restart(self) -> None:
        """Start a new server on the same socket (after the old one died or was killed)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the server is still running")
        self.process = None
        self.start()

    def __enter__(self) -> PulseStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- clients ------------------------------------------------------------------

    def _pactl_ok(self, *args: str) -> bool:
        return (
            subprocess.run(
                ["pactl", *args], env=self.env(), capture_output=True, timeout=5
            ).returncode
            == 0
        )

    def pactl(self, *args: str) -> str:
        result = subprocess.run(
            ["pactl", *args], env=self.env(), capture_output=True, text=True, timeout=10
        )
        if result.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def load_module(self, name: str, *args: str) -> int:
        return int(self.pactl("load-module", name, *args).strip())

    def unload_module(self, index: int) -> None:
        self.pactl("unload-module", str(index))

    def play_into_mic(self, wav_path: str | Path, *, wait: bool = True) -> subprocess.Popen[bytes]:
        """Play a WAV file into the `mic` sink (the app hears it); waits unless told not to."""
        proc = subprocess.Popen(
            ["paplay", "-d", "mic", "--latency-msec=200", str(wav_path)],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if wait:
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise RuntimeError(f"paplay failed: {err.decode(errors='replace')}")
        return proc

    def start_recording(
        self, device: str = "spk.monitor", rate: int = 24000, *, wait: bool = True
    ) -> subprocess.Popen[bytes]:
        """Start parec on `device` (mono PCM16); stop it with `stop_recording`. Returns
        once the server records for it, unless told not to wait."""
        proc = subprocess.Popen(
            [
                "parec",
                "-d",
                device,
                f"--rate={rate}",
                "--channels=1",
                "--format=s16le",
                "--latency-msec=5",
                "--raw",
            ],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if wait:
            try:
                self.wait_until_recording(proc)
            except BaseException:
                proc.kill()
                proc.wait(5)
                raise
        return proc

    def wait_until_recording(self, proc: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
        """Wait until the server has a record stream (source output) of process `proc`
        (parec, or any client): from then on what the source hears reaches it."""
        owner = f'application.process.id = "{proc.pid}"'
        deadline = time.monotonic() + timeout_s
        while owner not in self.pactl("list", "source-outputs"):
            if proc.poll() is not None:
                raise RuntimeError(f"the recorder exited with {proc.returncode} before recording")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no record stream from pid {proc.pid} after {timeout_s} s")
            time.sleep(0.02)

    def wait_until_sink_running(self, sink: str = "spk", timeout_s: float = 10.0) -> None:
        """Wait until `sink` renders (a client plays into it). A recorder attached to the
        monitor of a sink still idle can miss what is played once it starts."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = dict(
                (fields[1], fields[-1])
                for fields in (
                    line.split() for line in self.pactl("list", "short", "sinks").splitlines()
                )
                if len(fields) > 2
            )
            if states.get(sink) == "RUNNING":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"sink {sink!r} not running after {timeout_s} s: {states}")
            time.sleep(0.02)

    def wait_until_sink_latency_below(
        self, limit_s: float, sink: str = "spk", timeout_s: float = 10.0
    ) -> None:
        """Wait until `sink` renders no further ahead than `limit_s`. A null sink nobody
        asked for less renders 2 s ahead, and keeps to that block for up to 2 s after a
        stream asks for less; what a monitor records meanwhile is out of place where the
        sink rewinds for a stream that starts (as the sound server's own output does at
        every reply)."""
        deadline = time.monotonic() + timeout_s
        while True:
            latency = self._sink_latency_s(sink)
            if latency is not None and latency < limit_s:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"sink {sink!r} still {latency} s ahead after {timeout_s} s")
            time.sleep(0.05)

    def _sink_latency_s(self, sink: str) -> float | None:
        current = None
        for line in self.pactl("list", "sinks").splitlines():
            line = line.strip()
            if line.startswith("Name:"):
                current = line.split(":", 1)[1].strip()
            elif current == sink and line.startswith("Latency:"):
                return int(line.split()[1]) / 1e6  # "Latency: 1234 usec, configured ..."
        return None

    async def engine_output_running(self, engine: Any, sink: str = "spk") -> None:
        """Start `engine` and wait until `sink` renders its stream, a few ms ahead: a
        recorder on the sink's monitor started from then on gets everything played, each
        sample in its place."""
        engine.start()
        await asyncio.to_thread(self.wait_until_sink_running, sink)
        await asyncio.to_thread(self.wait_until_sink_latency_below, 0.1, sink)

    @staticmethod
    def stop_recording(proc: subprocess.Popen[bytes]) -> np.ndarray[Any, np.dtype[np.int16]]:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        usable = len(out) - len(out) % 2
        return np.frombuffer(out[:usable], dtype=np.int16).copy()

    def record_speaker(
        self, seconds: float, rate: int = 24000, device: str = "spk.monitor"
    ) -> np.ndarray[Any, np.dtype[np.int16]]:
        """Record `seconds` of what the app's speaker plays (blocks for that long)."""
        proc = self.start_recording(device, rate)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=seconds)
        return self.stop_recording(proc)


def write_wav(path: str | Path, samples: np.ndarray[Any, Any], rate: int) -> Path:
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
    return path


def read_wav(path: str | Path) -> tuple[np.ndarray[Any, np.dtype[np.int16]], int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono PCM16")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy(), w.getframerate()


def espeak_wav(path: str | Path, text: str, *, pitch: int = 50, speed: int = 160) -> Path:
    """Speech from espeak-ng (22.05 kHz mono PCM16)."""
    subprocess.run(
        ["espeak-ng", "-w", str(path), "-p", str(pitch), "-s", str(speed), text],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return Path(path)
