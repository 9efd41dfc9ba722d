"""The handoff file: what a human agent needs to take over a support conversation
(the escalation remedy "Export for a human agent"). One UTF-8 JSON document:

    {
      "format": "emodesk-handoff", "version": 1,
      "session": {session_id, started_utc, profile, model, voice, language, consent_version},
      "written_utc": "...Z",
      "redaction": "what was masked",
      "transcript": [{"turn": 1, "role": "user" | "model", "text": "..."}],
      "timeline": [{turn, source, t_start_s, t_end_s, utc, emotion, confidence,
                    energy_level, arousal, valence, trend, escalate}],
      "verdicts": {"final": {"trend", "escalate", "advice"} | null,
                   "changes": [{"turn", "trend", "escalate", "advice"}]},
      "knowledge": [{"file", "text", "query", "turn"}]
    }

The transcript (and the queries the model made) go through `redact` first; the
timeline and verdicts are present only when the user consented (the controller keeps
none otherwise); `knowledge` is every passage the knowledge base answered with in
this session, once each, in the order first used."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from emodesk.core.export import SessionMetadata, entry_json, format_utc
from emodesk.core.profiles import PROFILES, Profile
from emodesk.core.redaction import EMAIL, PHONE, redact
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import TrackerVerdict

HANDOFF_FORMAT = "emodesk-handoff"
HANDOFF_VERSION = 1
REDACTION_NOTE = (
    f"Email addresses and phone numbers in the transcript are replaced by {EMAIL} and {PHONE}."
)


@dataclass(frozen=True, slots=True)
class UsedPassage:
    """A knowledge-base passage the model was given, with the query that found it."""

    file: str
    text: str
    query: str
    turn: int


def handoff_json(
    meta: SessionMetadata,
    transcript: Iterable[tuple[int, str, str]],
    entries: Sequence[TimelineEntry],
    passages: Iterable[UsedPassage],
    *,
    written: datetime | None = None,
) -> str:
    """The handoff document for a session: `transcript` is (turn, role, text)."""
    profile = PROFILES.get(meta.profile)
    changes: list[Mapping[str, object]] = []
    before: tuple[str, bool] | None = None
    for entry in entries:
        now = (entry.trend.value, entry.escalate)
        if now != before:
            advice = _advice(profile, entry)
            changes.append(
                {"turn": entry.reading.turn, "trend": now[0], "escalate": now[1], "advice": advice}
            )
            before = now
    final = None
    if entries:
        last = entries[-1]
        final = {
            "trend": last.trend.value,
            "escalate": last.escalate,
            "advice": _advice(profile, last),
        }
    seen: set[tuple[str, str]] = set()
    knowledge = []
    for passage in passages:
        if (passage.file, passage.text) in seen:
            continue
        seen.add((passage.file, passage.text))
        knowledge.append(
            {
                "file": passage.file,
                "text": passage.text,
                "query": redact(passage.query),
                "turn": passage.turn,
            }
        )
    document = {
        "format": HANDOFF_FORMAT,
        "version": HANDOFF_VERSION,
        "session": {
            "session_id": meta.session_id,
            "started_utc": format_utc(meta.started_utc),
            "profile": meta.profile,
            "model": meta.model,
            "voice": meta.voice,
            "language": meta.language,
            "consent_version": meta.consent_version,
        },
        "written_utc": format_utc(written or datetime.now(UTC)),
        "redaction": REDACTION_NOTE,
        "transcript": [
            {"turn": turn, "role": role, "text": redact(text)} for turn, role, text in transcript
        ],
        "timeline": [entry_json(entry) for entry in entries],
        "verdicts": {"final": final, "changes": changes},
        "knowledge": knowledge,
    }
    return json.dumps(document, ensure_ascii=False, allow_nan=False, indent=1) + "\n"


def _advice(profile: Profile | None, entry: TimelineEntry) -> str:
    if profile is None:
        return ""
    return profile.advice_for(TrackerVerdict(entry.trend, entry.escalate))
