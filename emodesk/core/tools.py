"""The functions a profile lets the model call, declared as data (the Gemini schema
dialect, upper-case types); the live layer turns them into FunctionDeclarations and the
conversation layer binds each name to its handler (`emodesk.conversation.tools`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from emodesk.core.emotion_tool import REPORT_EMOTION_DECLARATION, REPORT_EMOTION_TOOL_NAME

SEARCH_KNOWLEDGE_BASE = "search_knowledge_base"
SEARCH_COURSE_MATERIAL = "search_course_material"
NEXT_TOPIC = "next_topic"

_QUERY = {
    "type": "OBJECT",
    "properties": {"query": {"type": "STRING", "description": "What to look for, in words."}},
    "required": ["query"],
}

DECLARATIONS: Mapping[str, Mapping[str, object]] = MappingProxyType(
    {
        REPORT_EMOTION_TOOL_NAME: REPORT_EMOTION_DECLARATION,
        SEARCH_KNOWLEDGE_BASE: {
            "name": SEARCH_KNOWLEDGE_BASE,
            "description": (
                "Search the support knowledge base. Returns the best passages with the file "
                "each comes from; answer from them and name the file you used."
            ),
            "parameters": _QUERY,
        },
        SEARCH_COURSE_MATERIAL: {
            "name": SEARCH_COURSE_MATERIAL,
            "description": (
                "Search the course material. Returns the best passages with the topic file "
                "each comes from."
            ),
            "parameters": _QUERY,
        },
        NEXT_TOPIC: {
            "name": NEXT_TOPIC,
            "description": (
                "Move the lesson on to the next topic once the learner has understood the "
                "current one. Returns the new topic's title and its opening passage."
            ),
        },
    }
)


def declaration(name: str) -> Mapping[str, object]:
    """The declaration of tool `name`; KeyError naming the known tools otherwise."""
    try:
        return DECLARATIONS[name]
    except KeyError:
        raise KeyError(f"unknown tool {name!r}; known: {', '.join(sorted(DECLARATIONS))}") from None
