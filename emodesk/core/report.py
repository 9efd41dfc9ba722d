"""The session report (wellness profile): a plain-text summary of the emotion timeline.

It holds counts, confidences, trend changes and escalations only: no transcript, no
names, no device names; the session is named by its random id.
"""

from __future__ import annotations

from collections.abc import Sequence

from emodesk.core.emotion import Emotion, Source
from emodesk.core.export import SessionMetadata, format_utc
from emodesk.core.profiles import Profile
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import TrackerVerdict, Trend

_DISCLAIMER = "These are estimates of how the voice sounded, not a diagnosis of how anyone felt."


def _trend_words(trend: Trend) -> str:
    return trend.value.replace("_", " ")


def session_report(
    meta: SessionMetadata, entries: Sequence[TimelineEntry], profile: Profile
) -> str:
    lines = [
        "EmoDesk session report",
        f"Session: {meta.session_id}",
        f"Started: {format_utc(meta.started_utc)}",
        f"Profile: {profile.title}",
    ]
    if not entries:
        lines += ["", "No emotion estimates were recorded in this session.", "", _DISCLAIMER]
        return "\n".join(lines) + "\n"

    turns = {entry.reading.turn for entry in entries}
    span = max(e.reading.t_end_s for e in entries) - min(e.reading.t_start_s for e in entries)
    lines.append(f"Turns with estimates: {len(turns)} over {span:.0f} s")

    lines += ["", "Estimates per source:"]
    for source in Source:
        own = [entry.reading for entry in entries if entry.reading.source is source]
        if not own:
            lines.append(f"  {source.value}: none")
            continue
        counts = ", ".join(
            f"{emotion.value} {sum(1 for r in own if r.emotion is emotion)}" for emotion in Emotion
        )
        mean = sum(r.confidence for r in own) / len(own)
        lines.append(f"  {source.value}: {len(own)} ({counts}); mean confidence {mean:.2f}")

    lines += ["", "Trend over time:"]
    previous: Trend | None = None
    for entry in entries:
        if entry.trend is not previous:
            lines.append(f"  from turn {entry.reading.turn}: {_trend_words(entry.trend)}")
            previous = entry.trend

    escalation_turns: list[int] = []
    escalated = False
    for entry in entries:
        if entry.escalate and not escalated:
            escalation_turns.append(entry.reading.turn)
        escalated = entry.escalate
    lines.append("")
    if escalation_turns:
        turns_text = ", ".join(str(turn) for turn in escalation_turns)
        plural = "s" if len(escalation_turns) > 1 else ""
        lines.append(f"Escalations: {len(escalation_turns)} (at turn{plural} {turns_text})")
    else:
        lines.append("Escalations: none")

    last = entries[-1]
    final = TrackerVerdict(last.trend, last.escalate)
    lines += [
        "",
        f"Final trend: {_trend_words(last.trend)}",
        f"Advice: {profile.advice_for(final)}",
    ]
    if escalation_turns and not last.escalate:
        lines.append(f"During the escalation: {profile.escalation_action}")
    lines += ["", _DISCLAIMER]
    return "\n".join(lines) + "\n"
