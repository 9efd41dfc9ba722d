"""The handoff file's document and the floor redaction its lines go through."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from emodesk.core.emotion import EmotionReading
from emodesk.core.export import SessionMetadata
from emodesk.core.handoff import HANDOFF_FORMAT, UsedPassage, handoff_json
from emodesk.core.redaction import redact
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import Trend

META = SessionMetadata("abcd" * 4, datetime(2026, 11, 30, tzinfo=UTC), "Puck", "m", "support",
                       "v1", "English")  # fmt: skip


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail jane.doe+x@example.co.uk now", "mail [email] now"),
        ("call +44 20 7946 0958 or (555) 123-4567.", "call [phone] or [phone]."),
        ("my number is 0612345678", "my number is [phone]"),
        ("on 2024-05-01 at 10:30, order 42", "on 2024-05-01 at 10:30, order 42"),
        ("it costs 1,299.00 euros, pin 1234", "it costs 1,299.00 euros, pin 1234"),
    ],
)
def test_redact_masks_emails_and_phone_numbers_only(text: str, masked: str) -> None:
    assert redact(text) == masked


def entry(turn: int, emotion: str, trend: Trend, escalate: bool) -> TimelineEntry:
    reading = EmotionReading(turn=turn, source="model", t_start_s=turn, t_end_s=turn + 1.0,
                             emotion=emotion, confidence=0.7, energy_level="high")  # fmt: skip
    return TimelineEntry(reading, trend, escalate)


def test_the_document_has_each_part_with_verdict_changes_and_passages_once() -> None:
    entries = [
        entry(1, "angry", Trend.INSUFFICIENT_DATA, False),
        entry(2, "angry", Trend.INSUFFICIENT_DATA, False),
        entry(3, "angry", Trend.PERSISTENT_NEGATIVE, True),
    ]
    used = [
        UsedPassage("refunds.md", "Paid in 14 days.", "refund for a@b.com", 1),
        UsedPassage("refunds.md", "Paid in 14 days.", "refund again", 2),
        UsedPassage("router.md", "Hold reset.", "router", 3),
    ]
    said = [(1, "user", "I am a@b.com"), (1, "model", "Sorry to hear that.")]
    doc = json.loads(handoff_json(META, said, entries, used))
    assert doc["format"] == HANDOFF_FORMAT and doc["session"]["session_id"] == META.session_id
    assert doc["transcript"][0] == {"turn": 1, "role": "user", "text": "I am [email]"}
    assert len(doc["timeline"]) == 3
    changes = [(c["turn"], c["escalate"]) for c in doc["verdicts"]["changes"]]
    assert changes == [(1, False), (3, True)]
    assert doc["verdicts"]["final"]["advice"] == "Offer a human agent"
    assert [(p["file"], p["query"]) for p in doc["knowledge"]] == [
        ("refunds.md", "refund for [email]"),
        ("router.md", "router"),
    ]


def test_a_session_without_readings_has_no_final_verdict() -> None:
    doc = json.loads(handoff_json(META, [], [], []))
    assert doc["verdicts"] == {"final": None, "changes": []}
    assert doc["transcript"] == doc["timeline"] == doc["knowledge"] == []
