"""`LiveSettings` -> the SDK's `LiveConnectConfig` (what goes into the setup message).

google-genai is imported inside the function: importing it costs about half a second,
which the GUI must not pay at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emodesk.live.settings import LiveSettings

if TYPE_CHECKING:
    from google.genai import types

# Compression lets an audio session run past its ~15 minute limit: when the context
# reaches the trigger, the server drops the oldest turns down to the target.
COMPRESSION_TRIGGER_TOKENS = 25_600
COMPRESSION_TARGET_TOKENS = 12_800

_SENSITIVITIES = ("high", "low")


class InvalidLiveSettings(ValueError):
    """Settings that cannot become a connect config (unknown sensitivity, empty voice...)."""


def _check(settings: LiveSettings) -> None:
    if not settings.model.strip():
        raise InvalidLiveSettings("model must not be empty")
    if not settings.voice.strip():
        raise InvalidLiveSettings("voice must not be empty")
    for name in ("vad_start_sensitivity", "vad_end_sensitivity"):
        value = getattr(settings, name)
        if value not in _SENSITIVITIES:
            raise InvalidLiveSettings(f"{name} must be 'high' or 'low', got {value!r}")
    if settings.vad_silence_ms < 0:
        raise InvalidLiveSettings(f"vad_silence_ms must be >= 0, got {settings.vad_silence_ms}")


def model_name(settings: LiveSettings) -> str:
    """The model as the wire wants it (`models/...`)."""
    model = settings.model.strip()
    return model if model.startswith("models/") else f"models/{model}"


def build_connect_config(
    settings: LiveSettings, resume_handle: str | None, *, initial_history: bool = False
) -> types.LiveConnectConfig:
    """The setup for one connection. `resume_handle` continues an earlier session;
    `initial_history`: a fresh session the client will prefill with `client_content`
    (the server then waits for it, up to `turn_complete=True`, before realtime input)."""
    from google.genai import types

    _check(settings)
    if settings.push_to_talk:
        detection = types.AutomaticActivityDetection(disabled=True)
    else:
        detection = types.AutomaticActivityDetection(
            disabled=False,
            start_of_speech_sensitivity=(
                types.StartSensitivity.START_SENSITIVITY_HIGH
                if settings.vad_start_sensitivity == "high"
                else types.StartSensitivity.START_SENSITIVITY_LOW
            ),
            end_of_speech_sensitivity=(
                types.EndSensitivity.END_SENSITIVITY_HIGH
                if settings.vad_end_sensitivity == "high"
                else types.EndSensitivity.END_SENSITIVITY_LOW
            ),
            silence_duration_ms=settings.vad_silence_ms,
        )
    tools: list[types.Tool] | None = None
    if settings.tools:
        declarations = [types.FunctionDeclaration.model_validate(dict(t)) for t in settings.tools]
        tools = [types.Tool(function_declarations=declarations)]
    system_instruction = (
        types.Content(parts=[types.Part(text=settings.system_instruction)])
        if settings.system_instruction.strip()
        else None
    )
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=settings.voice)
            ),
            language_code=settings.language_code,
        ),
        system_instruction=system_instruction,
        tools=tools,  # type: ignore[arg-type]
        realtime_input_config=types.RealtimeInputConfig(automatic_activity_detection=detection),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(handle=resume_handle),
        context_window_compression=types.ContextWindowCompressionConfig(
            trigger_tokens=COMPRESSION_TRIGGER_TOKENS,
            sliding_window=types.SlidingWindow(target_tokens=COMPRESSION_TARGET_TOKENS),
        ),
        history_config=(
            types.HistoryConfig(initial_history_in_client_content=True) if initial_history else None
        ),
    )
