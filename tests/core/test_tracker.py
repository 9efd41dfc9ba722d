import itertools
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emodesk.core.emotion import Emotion, EmotionReading, EnergyLevel, Source
from emodesk.core.tracker import EmotionTracker, FusionRule, TrackerVerdict, Trend

ANGRY, SAD, ANXIOUS = Emotion.ANGRY, Emotion.SAD, Emotion.ANXIOUS
NEUTRAL, HAPPY = Emotion.NEUTRAL, Emotion.HAPPY


def reading(
    turn: int, emotion: Emotion, confidence: float = 0.9, source: Source = Source.MODEL
) -> EmotionReading:
    return EmotionReading(
        turn=turn,
        source=source,
        t_start_s=turn * 4.0,
        t_end_s=turn * 4.0 + 2.0,
        emotion=emotion,
        confidence=confidence,
        energy_level=EnergyLevel.MEDIUM,
    )


def feed(
    tracker: EmotionTracker, emotions: Iterable[Emotion], first_turn: int = 0
) -> list[TrackerVerdict]:
    return [tracker.add(reading(first_turn + i, e)) for i, e in enumerate(emotions)]


def test_insufficient_data_until_min_readings_turns() -> None:
    tracker = EmotionTracker(min_readings=3)
    verdicts = feed(tracker, [ANGRY, ANGRY])
    assert all(v == TrackerVerdict(Trend.INSUFFICIENT_DATA, False) for v in verdicts)
    # Two sources on the same turn are still one turn.
    tracker.add(reading(1, ANGRY, source=Source.ACOUSTIC))
    assert tracker.verdict.trend is Trend.INSUFFICIENT_DATA
    assert tracker.add(reading(2, ANGRY)).trend is not Trend.INSUFFICIENT_DATA


def test_steady_neutral_is_stable() -> None:
    verdicts = feed(EmotionTracker(), [NEUTRAL] * 8)
    assert verdicts[-1] == TrackerVerdict(Trend.STABLE, False)


def test_one_low_confidence_negative_reading_does_not_flip_the_trend() -> None:
    tracker = EmotionTracker()
    feed(tracker, [NEUTRAL] * 5)
    assert tracker.add(reading(5, ANGRY, confidence=0.2)) == TrackerVerdict(Trend.STABLE, False)
    low_score = tracker.score
    # Confident negative readings do move it.
    other = EmotionTracker()
    feed(other, [NEUTRAL] * 4)
    other.add(reading(4, ANGRY, confidence=0.95))
    assert other.score > 3 * low_score
    assert other.add(reading(5, ANGRY, confidence=0.95)).trend is Trend.WORSENING


def test_worsening_then_persistent_negative() -> None:
    verdicts = feed(EmotionTracker(), [NEUTRAL, NEUTRAL, NEUTRAL, ANGRY, SAD, ANXIOUS])
    assert verdicts[3].trend is Trend.WORSENING
    verdicts = feed(EmotionTracker(), [ANGRY] * 6)
    assert verdicts[-1].trend is Trend.PERSISTENT_NEGATIVE


def test_improving_when_the_newer_half_is_calmer() -> None:
    verdicts = feed(EmotionTracker(), [ANGRY, ANGRY, ANGRY, NEUTRAL, HAPPY, HAPPY])
    assert verdicts[-1].trend is Trend.IMPROVING


def test_escalation_needs_the_high_threshold() -> None:
    tracker = EmotionTracker(escalate_on=0.6, release_below=0.3)
    verdicts = feed(tracker, [ANGRY] * 6)
    escalated_at = [i for i, v in enumerate(verdicts) if v.escalate]
    assert escalated_at and escalated_at[0] >= 2  # never before min_readings turns
    first = escalated_at[0]
    assert all(v.escalate for v in verdicts[first:])


def test_escalation_holds_through_alternating_turns_and_releases_only_when_calm() -> None:
    tracker = EmotionTracker(escalate_on=0.6, release_below=0.3)
    feed(tracker, [ANGRY] * 6)
    assert tracker.verdict.escalate
    alternating = feed(tracker, [NEUTRAL, ANGRY] * 4, first_turn=6)
    assert all(v.escalate for v in alternating)  # no flapping
    calm = feed(tracker, [HAPPY] * 6, first_turn=14)
    flips = [True] + [v.escalate for v in calm]
    assert flips[-1] is False
    # Once released it stays released: exactly one change.
    assert sum(1 for a, b in itertools.pairwise(flips) if a != b) == 1


def test_alternating_turns_never_escalate_from_calm() -> None:
    tracker = EmotionTracker(escalate_on=0.6, release_below=0.3)
    verdicts = feed(tracker, [NEUTRAL, ANGRY] * 10)
    assert not any(v.escalate for v in verdicts)


def test_fusion_weights_the_acoustic_label_lower() -> None:
    model_only = EmotionTracker()
    acoustic_only = EmotionTracker()
    for turn in range(3):
        model_only.add(reading(turn, ANGRY, 0.8, Source.MODEL))
        acoustic_only.add(reading(turn, ANGRY, 0.8, Source.ACOUSTIC))
    # score = sum(w*c*p) / (sum(w*c) + prior 0.5); acoustic w = 0.5
    assert model_only.score == pytest.approx(2.4 / 2.9)
    assert acoustic_only.score == pytest.approx(1.2 / 1.7)
    # On the same turns, a confident neutral model outweighs an equally confident angry
    # acoustic reading.
    both = EmotionTracker()
    for turn in range(3):
        both.add(reading(turn, NEUTRAL, 0.8, Source.MODEL))
        both.add(reading(turn, ANGRY, 0.8, Source.ACOUSTIC))
    assert both.score == pytest.approx(1.2 / (2.4 + 1.2 + 0.5))
    assert both.verdict == TrackerVerdict(Trend.STABLE, False)


def test_custom_fusion_rule() -> None:
    tracker = EmotionTracker(fuse=FusionRule(model_weight=0.0, acoustic_weight=1.0))
    for turn in range(3):
        tracker.add(reading(turn, HAPPY, 1.0, Source.MODEL))
        tracker.add(reading(turn, SAD, 1.0, Source.ACOUSTIC))
    assert tracker.score == pytest.approx(3 / 3.5)


def test_a_newer_reading_for_the_same_turn_and_source_replaces_the_older() -> None:
    tracker = EmotionTracker()
    tracker.add(reading(0, ANGRY, 1.0))
    tracker.add(reading(0, HAPPY, 1.0))
    assert tracker.score == pytest.approx(-1.0 / 1.5)


def test_only_the_last_window_turns_count() -> None:
    tracker = EmotionTracker(window=4)
    feed(tracker, [ANGRY] * 4 + [NEUTRAL] * 4)
    assert tracker.score == 0.0
    # A late reading for a turn older than the window changes nothing.
    before = tracker.verdict
    assert tracker.add(reading(1, ANGRY, 1.0)) == before
    assert tracker.score == 0.0


def test_reset_forgets_everything() -> None:
    tracker = EmotionTracker()
    feed(tracker, [ANGRY] * 6)
    tracker.reset()
    assert tracker.verdict == TrackerVerdict(Trend.INSUFFICIENT_DATA, False)
    assert tracker.score == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 1},
        {"window": True},
        {"min_readings": 0},
        {"window": 4, "min_readings": 5},
        {"escalate_on": 0.3, "release_below": 0.3},
        {"escalate_on": 1.5},
        {"change_by": 0.0},
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EmotionTracker(**kwargs)  # type: ignore[arg-type]


def test_bad_fusion_rules_and_readings_are_rejected() -> None:
    with pytest.raises(ValueError):
        FusionRule(model_weight=-1.0)
    with pytest.raises(ValueError):
        FusionRule(model_weight=0.0, acoustic_weight=0.0)
    with pytest.raises(TypeError):
        EmotionTracker().add("angry")  # type: ignore[arg-type]


readings = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=30),
        st.sampled_from(list(Emotion)),
        st.floats(min_value=0.0, max_value=1.0),
        st.sampled_from(list(Source)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(readings)
def test_escalation_changes_only_across_its_thresholds(
    items: list[tuple[int, Emotion, float, Source]],
) -> None:
    tracker = EmotionTracker(escalate_on=0.6, release_below=0.3)
    was = False
    for turn, emotion, confidence, source in items:
        verdict = tracker.add(reading(turn, emotion, confidence, source))
        score = tracker.score
        assert -1.0 <= score <= 1.0
        if verdict.trend is Trend.INSUFFICIENT_DATA:
            assert not verdict.escalate
        elif verdict.escalate and not was:
            assert score >= 0.6
        elif was and not verdict.escalate:
            assert score < 0.3
        elif verdict.trend is Trend.PERSISTENT_NEGATIVE:
            assert score >= 0.5
        was = verdict.escalate


def _model(turn: int, emotion: str, confidence: float = 0.8) -> EmotionReading:
    return EmotionReading(
        turn=turn, source=Source.MODEL, t_start_s=float(turn), t_end_s=turn + 0.5,
        emotion=Emotion(emotion), confidence=confidence, energy_level=EnergyLevel.MEDIUM,
    )  # fmt: skip


def test_the_seeds_own_examples_come_out_as_the_seed_says() -> None:
    # Seed 000, Pattern 3: "sad, sad, neutral" is improving...
    improving = EmotionTracker()
    verdicts = [improving.add(_model(i, e)) for i, e in enumerate(("sad", "sad", "neutral"), 1)]
    assert verdicts[-1].trend is Trend.IMPROVING and not verdicts[-1].escalate
    # ...and "anxious 0.8, angry 0.7, angry 0.9" escalates.
    escalating = EmotionTracker()
    readings = (("anxious", 0.8), ("angry", 0.7), ("angry", 0.9))
    last = [escalating.add(_model(i, e, c)) for i, (e, c) in enumerate(readings, 1)][-1]
    assert last.escalate and last.trend is Trend.PERSISTENT_NEGATIVE
