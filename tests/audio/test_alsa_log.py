"""ALSA's messages reach the log, not the terminal."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import pytest

from emodesk.audio.alsa_log import route_alsa_messages


def test_an_alsa_complaint_goes_to_the_log_not_to_stderr(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    assert route_alsa_messages()
    libasound = ctypes.CDLL(ctypes.util.find_library("asound"))
    pcm = ctypes.c_void_p()
    with caplog.at_level(logging.DEBUG, logger="emodesk.audio.alsa"):
        # An unknown device: ALSA says so through its error handler.
        code = libasound.snd_pcm_open(ctypes.byref(pcm), b"no_such_device_xyz", 0, 0)
    assert code < 0
    assert "ALSA" in caplog.text and "no_such_device_xyz" not in capfd.readouterr().err
    assert "Unknown PCM" in caplog.text or "snd_pcm_open" in caplog.text
