"""A registry of function-call handlers: each tool is its declaration (data, from
`emodesk.core.tools`), an async handler and a time limit. `dispatch` never raises: an
unknown function, a handler that fails or runs over its limit is answered with an
error the model can read."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

ToolResponse = dict[str, Any]
Handler = Callable[[Mapping[str, Any]], Awaitable[ToolResponse]]
# A handler answers within this unless it says otherwise: the model's reply waits.
DEFAULT_TOOL_LIMIT_S = 2.0


@dataclass(frozen=True, slots=True)
class Tool:
    declaration: Mapping[str, object]
    handler: Handler
    limit_s: float = DEFAULT_TOOL_LIMIT_S

    @property
    def name(self) -> str:
        return str(self.declaration["name"])


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools = {tool.name: tool for tool in tools}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def declarations(self) -> tuple[Mapping[str, object], ...]:
        return tuple(tool.declaration for tool in self._tools.values())

    async def dispatch(self, name: str, args: Mapping[str, Any]) -> ToolResponse:
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return {"error": f"unknown function {name!r}; the functions here: {known}"}
        try:
            async with asyncio.timeout(tool.limit_s):
                return await tool.handler(args)
        except TimeoutError:
            log.warning("the %s handler ran over %.1f s", name, tool.limit_s)
            return {"error": f"{name} did not answer within {tool.limit_s:.1f} s"}
        except Exception as exc:  # the model hears that it failed; the turn goes on
            log.exception("the %s handler failed", name)
            return {"error": f"{name} failed: {exc or type(exc).__name__}"}
