"""The `report_user_emotion` function the model is asked to call at the start of every
reply (declared only with the user's consent). A plain JSON-schema dict in the Gemini
schema dialect (upper-case types); the live layer turns it into a FunctionDeclaration."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from emodesk.core.emotion import Emotion, EnergyLevel

REPORT_EMOTION_TOOL_NAME = "report_user_emotion"

REPORT_EMOTION_DECLARATION: Mapping[str, object] = {
    "name": REPORT_EMOTION_TOOL_NAME,
    "description": (
        "Report your estimate of the emotional expression in the user's latest turn, "
        "judged from how they sound and what they say. Call it once at the start of "
        "every reply, before answering."
    ),
    "parameters": {
        "type": "OBJECT",
        "properties": {
            "emotion": {
                "type": "STRING",
                "enum": [emotion.value for emotion in Emotion],
                "description": "The closest of the five labels.",
            },
            "confidence": {
                "type": "NUMBER",
                "minimum": 0.0,
                "maximum": 1.0,
                "description": "How sure you are, from 0 to 1.",
            },
            "energy_level": {
                "type": "STRING",
                "enum": [level.value for level in EnergyLevel],
                "description": "How energetic the user sounds.",
            },
        },
        "required": ["emotion", "confidence", "energy_level"],
    },
}


def report_emotion_declaration() -> dict[str, object]:
    """A fresh deep copy of the declaration, safe to hand to code that mutates it."""
    return copy.deepcopy(dict(REPORT_EMOTION_DECLARATION))


# What the app answers to the call: it returns at once, so the reply is not delayed.
REPORT_EMOTION_RESPONSE: Mapping[str, object] = {"result": "ok"}
