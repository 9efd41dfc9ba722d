from datetime import UTC, datetime

from emodesk.core.emotion import Emotion, EmotionReading, EnergyLevel, Source
from emodesk.core.export import SessionMetadata
from emodesk.core.profiles import get_profile
from emodesk.core.report import session_report
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import EmotionTracker

META = SessionMetadata(
    session_id="0011223344556677",
    started_utc=datetime(2026, 11, 22, 9, tzinfo=UTC),
    voice="Kore",
    model="gemini-3.1-flash-live-preview",
    profile="wellness",
    consent_version="2026-11-1",
    language="English",
)
WELLNESS = get_profile("wellness")


def session(emotions: list[Emotion], with_acoustic: bool = True) -> list[TimelineEntry]:
    """Entries as the controller makes them: each reading through a real tracker."""
    tracker = EmotionTracker()
    entries = []
    for turn, emotion in enumerate(emotions):
        sources = [Source.MODEL, Source.ACOUSTIC] if with_acoustic else [Source.MODEL]
        for source in sources:
            reading = EmotionReading(
                turn=turn,
                source=source,
                t_start_s=turn * 10.0,
                t_end_s=turn * 10.0 + 4.0,
                emotion=emotion if source is Source.MODEL else Emotion.NEUTRAL,
                confidence=0.8 if source is Source.MODEL else 0.4,
                energy_level=EnergyLevel.LOW,
                arousal=None if source is Source.MODEL else -0.2,
                valence=None if source is Source.MODEL else -0.1,
            )
            verdict = tracker.add(reading)
            entries.append(TimelineEntry(reading, verdict.trend, verdict.escalate))
    return entries


def test_report_of_a_persistently_negative_session() -> None:
    text = session_report(META, session([Emotion.SAD] * 8), WELLNESS)
    assert "Session: 0011223344556677" in text
    assert "Profile: Wellness check-in" in text
    assert "Turns with estimates: 8 over 74 s" in text
    assert "model: 8 (happy 0, sad 8, angry 0, anxious 0, neutral 0); mean confidence 0.80" in text
    assert "acoustic: 8 (happy 0, sad 0, angry 0, anxious 0, neutral 8); mean confidence 0.40" in (
        text
    )
    assert "from turn 0: insufficient data" in text
    assert "persistent negative" in text
    assert "Escalations: 1 (at turn" in text
    assert "Advice: Suggest professional help" in text
    assert "not a diagnosis" in text


def test_report_of_a_calm_session_and_of_an_escalation_that_ended() -> None:
    calm = session_report(META, session([Emotion.NEUTRAL] * 5, with_acoustic=False), WELLNESS)
    assert "acoustic: none" in calm
    assert "Escalations: none" in calm
    assert "Final trend: stable" in calm
    assert "Advice: Carry on" in calm
    ended = session_report(META, session([Emotion.ANGRY] * 6 + [Emotion.HAPPY] * 8), WELLNESS)
    assert "Escalations: 1 (at turn 2)" in ended
    assert "from turn 2: persistent negative\n  from turn 6: improving" in ended
    assert "Final trend: stable" in ended
    assert "During the escalation: Suggest professional help" in ended


def test_report_of_an_empty_session() -> None:
    text = session_report(META, [], WELLNESS)
    assert "No emotion estimates were recorded" in text
    assert "not a diagnosis" in text


def test_report_names_nobody() -> None:
    # Only the random id identifies the session: no voice, model or device names.
    text = session_report(META, session([Emotion.HAPPY] * 3), WELLNESS)
    assert "Kore" not in text and "gemini" not in text


def test_report_lists_every_escalation() -> None:
    emotions = [Emotion.ANGRY] * 4 + [Emotion.HAPPY] * 6 + [Emotion.ANGRY] * 6
    text = session_report(META, session(emotions, with_acoustic=False), WELLNESS)
    assert "Escalations: 2 (at turns 2, 14)" in text
