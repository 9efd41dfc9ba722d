"""`search_knowledge_base`: the support profile's knowledge base, a local full-text
index of the user's folder (`emodesk.store.knowledge`). The search runs in a worker
thread, never on the loop; the answer is the best passages, each with its file, so the
model can cite it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from emodesk.conversation.tools.registry import Tool, ToolResponse
from emodesk.core.tools import SEARCH_KNOWLEDGE_BASE, declaration
from emodesk.store.knowledge import KnowledgeIndex

PASSAGES_PER_ANSWER = 3
MAX_QUERY_CHARS = 500  # a longer query is cut: a question, not a document


def search_tool(name: str, index: KnowledgeIndex, k: int = PASSAGES_PER_ANSWER) -> Tool:
    """The function `name` (declared in `emodesk.core.tools`, one string `query`)
    answered from `index`: `{"passages": [{"file": ..., "text": ...}, ...]}`."""

    async def handle(args: Mapping[str, Any]) -> ToolResponse:
        query = args.get("query")
        if not isinstance(query, str) or not query.strip():
            return {"error": f"{name} needs a query: the words to look for"}
        passages = await asyncio.to_thread(index.search, query[:MAX_QUERY_CHARS], k)
        response: ToolResponse = {"passages": [{"file": p.file, "text": p.text} for p in passages]}
        if not passages:
            response["note"] = "Nothing matches; say so rather than guess."
        return response

    return Tool(declaration(name), handle)


def knowledge_tools(index: KnowledgeIndex) -> dict[str, Tool]:
    """The support profile's tools over a knowledge folder's index, by name."""
    return {SEARCH_KNOWLEDGE_BASE: search_tool(SEARCH_KNOWLEDGE_BASE, index)}
