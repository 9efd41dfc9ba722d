"""The sound server's own sources and sinks (PulseAudio through libpulse), listed by
their descriptions with the default marked, and a choice of them applied to the
engine's streams: on the private PulseAudio server with a second speaker and a second
microphone, audio really goes to (and comes from) the one chosen."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from emodesk.app.devices import list_device_names
from emodesk.audio import AudioEngine
from emodesk.audio.pulse import ENV_NAMES, list_server_devices
from tests.support.pulse import SPEAKER_SINK_ARGS, PulseStack, write_wav
from tests.support.signals import band_limited_noise, best_match, wait_until

pytestmark = [pytest.mark.audio_stack, pytest.mark.timeout(90)]


@pytest.fixture
def second_devices(pulse: PulseStack) -> Iterator[PulseStack]:
    """A second speaker ("Headphones", sink spk2) and a second microphone ("USB
    Microphone", source usbmic, which hears what is played into sink mic2)."""
    modules = [
        pulse.load_module(
            "module-null-sink", "sink_name=spk2", *SPEAKER_SINK_ARGS,
            'sink_properties=device.description="Headphones"',
        ),
        pulse.load_module("module-null-sink", "sink_name=mic2", "rate=48000"),
        pulse.load_module(
            "module-remap-source", "master=mic2.monitor", "source_name=usbmic",
            "source_properties='device.description=\"USB Microphone\"'",
        ),
    ]  # fmt: skip
    try:
        yield pulse
    finally:
        for module in reversed(modules):
            pulse.unload_module(module)


def test_the_servers_devices_are_listed_by_description_with_the_default_marked(
    second_devices: PulseStack,
) -> None:
    server = list_server_devices()
    assert server is not None
    sources = {d.name: d for d in server.sources}
    sinks = {d.name: d for d in server.sinks}
    assert sources["usbmic"].description == "USB Microphone"
    assert sinks["spk2"].description == "Headphones"
    assert sinks["spk"].is_default and not sinks["spk2"].is_default
    assert sources["mic.monitor"].is_default  # a monitor, listed because it is the default
    assert "spk2.monitor" not in sources, "monitors of speakers are not microphones"
    assert server.sources[0].is_default and server.sinks[0].is_default  # defaults first

    inputs, outputs = list_device_names()
    assert ("usbmic", "USB Microphone") in [(c.value, c.title) for c in inputs]
    assert [c.title for c in outputs if c.is_default] == ["Null Output"]
    assert ("spk2", "Headphones") in [(c.value, c.title) for c in outputs]


async def test_the_chosen_speaker_plays_and_the_default_stays_silent(
    second_devices: PulseStack, make_engine: Callable[..., AudioEngine]
) -> None:
    pulse = second_devices
    engine = make_engine(output_device="spk2", playout_buffer_ms=40)
    engine.start()
    await asyncio.to_thread(pulse.wait_until_sink_running, "spk2")
    await asyncio.to_thread(pulse.wait_until_sink_latency_below, 0.1, "spk2")
    chosen = await asyncio.to_thread(pulse.start_recording, "spk2.monitor", 24000)
    default = await asyncio.to_thread(pulse.start_recording, "spk.monitor", 24000)
    reply = band_limited_noise(12000, 7)
    started: list[float] = []
    engine.set_listeners(on_playback_started=started.append)
    for i in range(0, reply.size, 960):
        engine.play(reply[i : i + 960].tobytes(), 24000)
    await wait_until(lambda: bool(started), 10, "playback never started")
    await wait_until(lambda: not engine.reply_active, 10, "playback never finished")
    on_chosen = await asyncio.to_thread(pulse.stop_recording, chosen)
    on_default = await asyncio.to_thread(pulse.stop_recording, default)

    score, _ = best_match(on_chosen, reply)
    assert score > 0.8, f"the chosen speaker did not play the reply (ncc {score:.2f})"
    assert np.abs(on_default.astype(np.int32)).max(initial=0) < 50, "the default played too"
    assert "PULSE_SINK" not in os.environ, "the routing leaked"


async def test_the_chosen_microphone_is_heard_and_the_default_is_not(
    second_devices: PulseStack, make_engine: Callable[..., AudioEngine], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    pulse = second_devices
    engine = make_engine(input_device="usbmic", frame_ms=20)
    frames: list[bytes] = []
    engine.start_capture(frames.append)
    await wait_until(lambda: len(frames) >= 5, 10, "no frames from the microphone")
    assert engine.input_device is not None and engine.input_device.name == "pulse"
    noise = band_limited_noise(16000, 3)
    wav = write_wav(tmp_path / "noise.wav", noise, 16000)
    await asyncio.to_thread(_paplay, pulse, "mic", wav)  # the default mic: not chosen
    heard_default = len(frames)
    await asyncio.to_thread(_paplay, pulse, "mic2", wav)  # the chosen one
    need = len(frames) + 25
    await wait_until(lambda: len(frames) >= need, 10, "the chosen mic went quiet")
    engine.stop_capture()

    captured = np.frombuffer(b"".join(frames), dtype=np.int16)
    before = captured[: heard_default * 320]
    after = captured[heard_default * 320 :]
    score, _ = best_match(after, noise)
    assert score > 0.8, f"the chosen microphone was not heard (ncc {score:.2f})"
    assert best_match(before, noise)[0] < 0.3, "the default microphone was heard"
    assert ENV_NAMES["input"] not in os.environ


def _paplay(pulse: PulseStack, sink: str, wav: object) -> None:
    import subprocess

    subprocess.run(
        ["paplay", "-d", sink, "--latency-msec=200", str(wav)],
        env=pulse.env(), check=True, timeout=30, capture_output=True,
    )  # fmt: skip


async def test_a_chosen_device_no_longer_there_falls_back_to_the_default_and_says_so(
    pulse: PulseStack, make_engine: Callable[..., AudioEngine]
) -> None:
    engine = make_engine(output_device="unplugged-headset")
    notes: list[str] = []
    engine.set_listeners(on_info=lambda message, side: notes.append(message))
    engine.start()
    await asyncio.to_thread(pulse.wait_until_sink_running, "spk")
    await wait_until(lambda: bool(notes), 10, "the fallback was not said")
    assert any("'unplugged-headset' not found" in n for n in notes)


def test_without_a_sound_server_the_list_is_portaudios(
    pulse: PulseStack, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with monkeypatch.context() as patch:
        patch.setenv("PULSE_SERVER", f"unix:{tmp_path / 'no-server'}")
        assert list_server_devices() is None  # and none was started
    import emodesk.audio.pulse

    monkeypatch.setattr(emodesk.audio.pulse, "list_server_devices", lambda: None)
    inputs, outputs = list_device_names()
    assert "pulse" in [c.value for c in inputs] and "pulse" in [c.title for c in outputs]
    assert all(c.value == c.title for c in inputs + outputs)


def test_routing_sets_the_variable_for_the_open_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from emodesk.audio.pulse import routed

    monkeypatch.setenv("PULSE_SINK", "the-users-own")
    monkeypatch.delenv("PULSE_SOURCE", raising=False)
    with routed("headset", "output"), routed("usbmic", "input"):
        assert os.environ["PULSE_SINK"] == "headset" and os.environ["PULSE_SOURCE"] == "usbmic"
    assert os.environ["PULSE_SINK"] == "the-users-own" and "PULSE_SOURCE" not in os.environ
    with routed(None, "output"):  # the default: what the environment says
        assert os.environ["PULSE_SINK"] == "the-users-own"


def test_the_devices_command_lists_the_servers_devices_too(second_devices: PulseStack) -> None:
    import argparse
    import io

    from emodesk.commands.devices import run

    out = io.StringIO()
    assert run(argparse.Namespace(), out) == 0
    listed = out.getvalue()
    assert "The sound server's devices" in listed
    assert "usbmic" in listed and "USB Microphone" in listed
    assert any(line.split()[:2] == ["*", "spk"] for line in listed.splitlines())
