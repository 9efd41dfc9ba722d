"""`report_user_emotion`: the model's estimate for the turn it answers. The answer is at
once (the reply waits for it) and may carry a short context note from the app: the
trend the tracker sees, told once per change (Pattern 3 of the seed), since on 3.1 a
`client_content` mid-session closes it and realtime text would be a user turn."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from emodesk.conversation.tools.registry import Tool, ToolResponse
from emodesk.core.emotion_tool import REPORT_EMOTION_DECLARATION, REPORT_EMOTION_RESPONSE
from emodesk.core.parsing import EmotionParseError, ParsedEmotion, parse_emotion_args

# (the model's report) -> the note to pass on now, if any
OnReport = Callable[[ParsedEmotion], str | None]


def emotion_report_tool(on_report: OnReport) -> Tool:
    async def handle(args: Mapping[str, Any]) -> ToolResponse:
        try:
            report = parse_emotion_args(args)
        except (EmotionParseError, ValueError) as exc:
            return {"error": str(exc)}
        response: ToolResponse = dict(REPORT_EMOTION_RESPONSE)
        note = on_report(report)
        if note:
            response["note"] = note
        return response

    return Tool(REPORT_EMOTION_DECLARATION, handle)
