"""Connect config, endpoint/CA resolution and the API key store."""

from __future__ import annotations

import logging

import pytest

from emodesk.core.emotion_tool import REPORT_EMOTION_DECLARATION
from emodesk.live.config import InvalidLiveSettings, build_connect_config
from emodesk.live.credentials import (
    ENV_API_KEY,
    RedactingFilter,
    load_api_key,
)
from emodesk.live.emulator.tls import make_certificate
from emodesk.live.endpoint import (
    Endpoint,
    EndpointError,
    api_version_for,
    http_options,
    resolve_endpoint,
)
from emodesk.live.settings import LiveSettings


def test_push_to_talk_config() -> None:
    config = build_connect_config(LiveSettings(voice="Kore", system_instruction="Hi"), None)
    assert config.realtime_input_config.automatic_activity_detection.disabled is True
    voice = config.speech_config.voice_config.prebuilt_voice_config.voice_name
    assert voice == "Kore"
    assert config.system_instruction.parts[0].text == "Hi"
    assert config.input_audio_transcription is not None
    assert config.output_audio_transcription is not None
    assert config.context_window_compression.sliding_window is not None
    assert config.session_resumption is not None and config.session_resumption.handle is None
    assert config.tools is None  # no consent, no emotion tool


def test_hands_free_config_and_resume_handle() -> None:
    settings = LiveSettings(
        push_to_talk=False, vad_start_sensitivity="low", vad_end_sensitivity="high",
        vad_silence_ms=800, tools=(REPORT_EMOTION_DECLARATION,),
    )  # fmt: skip
    config = build_connect_config(settings, "handle-1")
    detection = config.realtime_input_config.automatic_activity_detection
    assert detection.disabled is False
    assert detection.start_of_speech_sensitivity.value == "START_SENSITIVITY_LOW"
    assert detection.end_of_speech_sensitivity.value == "END_SENSITIVITY_HIGH"
    assert detection.silence_duration_ms == 800
    assert config.session_resumption.handle == "handle-1"
    assert config.tools[0].function_declarations[0].name == "report_user_emotion"


@pytest.mark.parametrize(
    "changes", [{"vad_start_sensitivity": "medium"}, {"voice": " "}, {"vad_silence_ms": -1}]
)
def test_bad_settings_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidLiveSettings):
        build_connect_config(LiveSettings(**changes), None)  # type: ignore[arg-type]


def test_endpoint_from_env_and_args(tmp_path) -> None:
    ca = make_certificate(tmp_path).cert_file
    env = {"EMODESK_ENDPOINT": "wss://127.0.0.1:9999/", "EMODESK_CA_FILE": str(ca)}
    assert resolve_endpoint(env=env) == Endpoint("https://127.0.0.1:9999", str(ca))
    chosen = resolve_endpoint("https://localhost:1", None, env=env)
    assert chosen.base_url == "https://localhost:1" and chosen.ca_file == str(ca)
    assert resolve_endpoint(env={}).is_default


@pytest.mark.parametrize(
    ("url", "verify", "words"),
    [
        ("ws://127.0.0.1:1", True, "wss"),
        ("http://127.0.0.1:1", True, "wss"),
        ("ftp://x", True, "wss:// or https://"),
        ("wss://example.com", False, "loopback"),
    ],
)
def test_insecure_endpoints_are_refused(url: str, verify: bool, words: str) -> None:
    with pytest.raises(EndpointError, match=words):
        resolve_endpoint(url, verify=verify, env={})


def test_loopback_may_skip_verification_and_missing_ca_is_refused() -> None:
    assert resolve_endpoint("wss://127.0.0.1:5", verify=False, env={}).verify is False
    with pytest.raises(EndpointError, match="does not exist"):
        resolve_endpoint("wss://127.0.0.1:5", "/nonexistent/ca.pem", env={})


def test_http_options_carry_the_ca_context_and_api_version(tmp_path) -> None:
    ca = make_certificate(tmp_path).cert_file
    options = http_options(Endpoint("https://127.0.0.1:5", str(ca)), "v1alpha")
    assert options.base_url == "https://127.0.0.1:5" and options.api_version == "v1alpha"
    assert options.async_client_args["ssl"].get_ca_certs()
    assert api_version_for(LiveSettings(api_key="auth_tokens/abc")) == "v1alpha"
    assert api_version_for(LiveSettings(api_key="AIza-plain")) is None


def test_key_comes_from_env_when_keyring_is_empty() -> None:
    assert load_api_key(env={ENV_API_KEY: " k-123 "}) == "k-123"
    assert load_api_key(env={}) is None


def test_key_never_reaches_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("emodesk.test.redact")
    secret = "my-secret-key-value"
    google_shaped = "AIza" + "B" * 35
    redactor = RedactingFilter(secret)
    caplog.handler.addFilter(redactor)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("connecting with %s and %s", secret, google_shaped)
    finally:
        caplog.handler.removeFilter(redactor)
    assert secret not in caplog.text and google_shaped not in caplog.text
    assert "[redacted]" in caplog.text


def test_settings_repr_hides_the_key() -> None:
    assert "sekrit" not in repr(LiveSettings(api_key="sekrit"))


async def test_unusable_settings_fail_without_retrying() -> None:
    from emodesk.live.events import LinkState, LinkStateChanged, SessionError
    from emodesk.live.session import LiveSession
    from tests.support.emulator import EventLog

    session, log = LiveSession(), EventLog()
    session.set_listener(log)
    await session.start(LiveSettings(endpoint="ws://127.0.0.1:1", api_key="k"))
    assert session.state is LinkState.FAILED
    assert "wss" in log.of(SessionError)[0].message
    assert not [e for e in log.of(LinkStateChanged) if e.state is LinkState.RECONNECTING]
    await session.close()


def test_the_sdk_is_imported_lazily() -> None:
    import subprocess
    import sys

    code = (
        "import sys, emodesk.live.session, emodesk.live.config, emodesk.live.endpoint;"
        "print('google.genai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("bad", ["AIza key with spaces", "AIzaKey\nX-Header: 1", "AIza\x00key"])
def test_an_unusable_key_is_refused_not_sent(bad: str, monkeypatch) -> None:
    import keyring

    from emodesk.live.credentials import INVALID_STORED_KEY, CredentialError, store_api_key

    stored: list[str] = []
    monkeypatch.setattr(keyring, "set_password", lambda *args: stored.append(args[-1]))
    with pytest.raises(CredentialError, match="invalid characters"):
        store_api_key(bad)
    assert not stored
    with pytest.raises(CredentialError, match="invalid characters"):
        load_api_key(env={ENV_API_KEY: bad})
    monkeypatch.setattr(keyring, "get_password", lambda *args: bad)
    with pytest.raises(CredentialError) as info:
        load_api_key(env={})
    assert str(info.value) == INVALID_STORED_KEY
    assert bad not in str(info.value)


def test_install_log_redaction_masks_the_key_in_messages_and_tracebacks() -> None:
    import io

    from emodesk.live.credentials import install_log_redaction

    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    secret, token = "plain-secret-not-key-shaped", "auth_tokens/abc.DEF-123"
    try:
        install_log_redaction(secret)
        install_log_redaction(secret)  # again: one filter, not two
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        logger = logging.getLogger("emodesk.test.install")
        logger.warning("header was %s, token %s", secret, token)
        try:
            raise ValueError(f"invalid x-goog-api-key header: {secret}")
        except ValueError:
            logger.exception("connect failed")
    finally:
        root.removeHandler(handler)
        if logging.lastResort is not None:
            for f in [f for f in logging.lastResort.filters if isinstance(f, RedactingFilter)]:
                logging.lastResort.removeFilter(f)
    text = stream.getvalue()
    assert "connect failed" in text and "Traceback" in text
    assert secret not in text and token not in text
    assert text.count("[redacted]") == 3
