"""Every public core module imports and its main entry point answers."""

from emodesk.core.emotion import Source
from emodesk.core.export import CSV_COLUMNS, timeline_csv
from emodesk.core.parsing import parse_emotion_args
from emodesk.core.profiles import PROFILES
from emodesk.core.settings import AppSettings
from emodesk.core.timeline import Timeline, TimelineEntry
from emodesk.core.tracker import EmotionTracker, Trend


def test_a_reading_flows_from_parser_to_csv() -> None:
    parsed = parse_emotion_args({"emotion": "happy", "confidence": 0.9, "energy_level": "low"})
    reading = parsed.to_reading(turn=1, source=Source.MODEL, t_start_s=0.0, t_end_s=1.0)
    verdict = EmotionTracker().add(reading)
    timeline = Timeline()
    timeline.append(TimelineEntry(reading, verdict.trend, verdict.escalate))
    lines = timeline_csv("abc", timeline.entries()).splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert lines[1].startswith("abc,1,model,0.000,1.000,")
    assert verdict.trend is Trend.INSUFFICIENT_DATA
    assert set(PROFILES) == {"general", "support", "tutor", "wellness"}
    assert AppSettings().voice == "Puck"
