"""Reading what a Live client sends: key spelling, base64 alphabets, audio mime types.

The real SDK writes top-level keys in snake_case and nested ones partly in camelCase,
and bytes as URL-safe base64; other clients write camelCase and standard base64. The
emulator accepts all of them, like Google's server does.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")
# Payloads that belong to the user (function args, responses, JSON schemas): keys kept.
_OPAQUE = frozenset({"args", "response", "parameters", "parameters_json_schema", "response_json"})

_PCM_MIME = re.compile(r"^audio/pcm(?:\s*;\s*rate\s*=\s*(\d+))?\s*$", re.IGNORECASE)
MIN_INPUT_RATE = 8_000
MAX_INPUT_RATE = 48_000


class WireError(ValueError):
    """A client message the server rejects (closes with 1007 and this text as reason)."""


def snake(name: str) -> str:
    return _CAMEL_HUMP.sub(r"_\1", name).lower()


def normalize_keys(value: Any) -> Any:
    """camelCase keys to snake_case, recursively, except inside user payloads."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = snake(key) if isinstance(key, str) else key
            out[name] = item if name in _OPAQUE else normalize_keys(item)
        return out
    if isinstance(value, list):
        return [normalize_keys(item) for item in value]
    return value


def decode_b64(data: Any) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    if not isinstance(data, str):
        raise WireError("Invalid value at 'data' (TYPE_BYTES): expected a base64 string")
    text = data.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireError(f"Invalid value at 'data' (TYPE_BYTES): {exc}") from None


def encode_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pcm_rate(mime_type: Any) -> int:
    """The sample rate of an `audio/pcm;rate=N` mime type (16000 when the rate is absent)."""
    if not isinstance(mime_type, str):
        raise WireError("realtime_input.audio.mime_type is required")
    match = _PCM_MIME.match(mime_type)
    if not match:
        raise WireError(f"Unsupported audio mime type {mime_type!r}: expected audio/pcm;rate=N")
    rate = int(match.group(1) or 16_000)
    if not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise WireError(f"Unsupported audio sample rate {rate} (8000 to 48000 Hz)")
    return rate


def duration_string(seconds: float) -> str:
    """google.protobuf.Duration in JSON: "12s" / "0.500s"."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"
