"""The tutor's tools over a course folder (the same index as the knowledge base):
`search_course_material(query)` and `next_topic()`, which moves the lesson through the
course's topics (its Markdown files in name order, or a one-file course's sections).
The controller shows the topic `next_topic` answers with (`TopicChanged`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from emodesk.conversation.tools.knowledge import search_tool
from emodesk.conversation.tools.registry import Tool, ToolResponse
from emodesk.core.tools import NEXT_TOPIC, SEARCH_COURSE_MATERIAL, declaration
from emodesk.store.knowledge import KnowledgeIndex, Topic


class Course:
    """Where the lesson is: `position` is the index of the current topic (-1 before
    the first `next_topic`)."""

    def __init__(self, index: KnowledgeIndex) -> None:
        self.index = index
        self.position = -1

    async def next_topic(self) -> tuple[Topic, int, int] | None:
        """The next topic with its number and the count; None after the last."""
        topics = await asyncio.to_thread(self.index.topics)
        if self.position + 1 >= len(topics):
            self.position = len(topics)
            return None
        self.position += 1
        return topics[self.position], self.position + 1, len(topics)

    def tools(self) -> dict[str, Tool]:
        async def next_topic(args: Mapping[str, Any]) -> ToolResponse:
            step = await self.next_topic()
            if step is None:
                return {"done": True, "note": "That was the last topic of the course."}
            topic, number, count = step
            return {
                "title": topic.title,
                "file": topic.file,
                "text": topic.text,
                "number": number,
                "of": count,
            }

        return {
            SEARCH_COURSE_MATERIAL: search_tool(SEARCH_COURSE_MATERIAL, self.index),
            NEXT_TOPIC: Tool(declaration(NEXT_TOPIC), next_topic),
        }


def course_tools(index: KnowledgeIndex) -> dict[str, Tool]:
    """The tutor's tools over a course folder's index, by name."""
    return Course(index).tools()
