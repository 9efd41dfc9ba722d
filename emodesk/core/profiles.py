"""Use-case profiles: the assistant's role, its emotion rules, and what each trend means.

The system instruction carries emotion rules and the `report_user_emotion` request only
with consent; without it the instruction says nothing about emotions at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from emodesk.core.emotion import Emotion, EnergyLevel
from emodesk.core.emotion_tool import REPORT_EMOTION_TOOL_NAME
from emodesk.core.parsing import ParsedEmotion
from emodesk.core.tools import NEXT_TOPIC, SEARCH_COURSE_MATERIAL, SEARCH_KNOWLEDGE_BASE
from emodesk.core.tracker import TrackerVerdict, Trend

DEFAULT_LANGUAGE = "English"
_MAX_LANGUAGE_CHARS = 40


class EscalationRemedy(StrEnum):
    """What the app itself can do when a profile's escalation fires."""

    ACKNOWLEDGE = "acknowledge"  # the advice is the user's to act on
    HAND_OFF = "hand_off"  # export the session for a human agent
    ASK_AGAIN = "ask_again"  # ask the model for another approach
    SESSION_REPORT = "session_report"  # show the session report


@dataclass(frozen=True, slots=True)
class Profile:
    key: str
    title: str
    instruction: str  # the role; never mentions emotions (sent without consent too)
    emotion_rules: str  # sent only with consent
    trend_advice: Mapping[Trend, str]
    escalation_action: str
    offers_session_report: bool = field(default=False)
    escalation_remedy: EscalationRemedy = field(default=EscalationRemedy.ACKNOWLEDGE)
    # Functions besides the emotion report (`emodesk.core.tools`), declared when the app
    # has what they need (a knowledge folder, course material).
    tools: tuple[str, ...] = ()
    # What the model is told to do next when it reports the learner so (the tutor).
    next_step: Callable[[ParsedEmotion], str | None] | None = None

    def __post_init__(self) -> None:
        missing = [trend.value for trend in Trend if trend not in self.trend_advice]
        if missing:
            raise ValueError(f"profile {self.key!r} has no advice for {missing}")
        object.__setattr__(self, "trend_advice", MappingProxyType(dict(self.trend_advice)))

    def advice_for(self, verdict: TrackerVerdict) -> str:
        """What the UI suggests for this verdict: the escalation action while escalated."""
        return self.escalation_action if verdict.escalate else self.trend_advice[verdict.trend]

    def context_note(self, verdict: TrackerVerdict, before: TrackerVerdict | None) -> str | None:
        """One short note for the model when the trend it should hear of changes (into
        persistent negative, improving or worsening) or escalation turns on or off; None
        when nothing it needs has changed."""
        escalated = verdict.escalate and not (before is not None and before.escalate)
        released = not verdict.escalate and before is not None and before.escalate
        told = verdict.trend in _TREND_NOTES and (before is None or before.trend != verdict.trend)
        if not (escalated or released or told):
            return None
        parts = ["Note from the app (not from the user):"]
        if told:
            parts.append(_TREND_NOTES[verdict.trend])
        if escalated:
            parts.append(f"This calls for it now: {self.escalation_action.lower()}.")
        elif released:
            parts.append("The user sounds calmer now; carry on as usual.")
        return " ".join(parts)


_REPORT_RULE = (
    f"At the start of every reply, before you answer, call the {REPORT_EMOTION_TOOL_NAME} "
    "function once with your estimate of the emotional expression in the user's latest "
    "turn: emotion (happy, sad, angry, anxious or neutral), confidence from 0 to 1, and "
    "energy_level (high, medium or low). Judge from how the user sounds (tone, pitch, "
    "pace, loudness) as well as from what they say. The estimate is not a diagnosis: do "
    "not tell the user what they feel, and do not mention the function unless asked."
)

# Pattern 1 of the seed, for every label: how a reply adapts to how the user sounds.
EMOTION_ADAPTATION: Mapping[Emotion, str] = MappingProxyType(
    {
        Emotion.ANXIOUS: (
            "If the user sounds rushed or anxious: answer calmly, key point first and "
            "short, and reassure (for example: no worries, let me help)."
        ),
        Emotion.SAD: (
            "If the user sounds sad or discouraged: show understanding before giving "
            "information, and offer solutions as options, not orders."
        ),
        Emotion.HAPPY: (
            "If the user sounds happy or enthusiastic: match their energy; light humour is fine."
        ),
        Emotion.ANGRY: (
            "If the user sounds angry or frustrated: acknowledge it first, then give "
            "concrete steps; do not get defensive."
        ),
        Emotion.NEUTRAL: "If the user sounds calm: simply help, clearly and briefly.",
    }
)

# The trends the model is told of (Pattern 3 reaching the model), one sentence each.
_TREND_NOTES: Mapping[Trend, str] = MappingProxyType(
    {
        Trend.PERSISTENT_NEGATIVE: "The user has sounded upset for several turns now.",
        Trend.WORSENING: "The user sounds more upset than a few turns ago.",
        Trend.IMPROVING: "The user sounds better than a few turns ago.",
    }
)


def _tutor_next_step(report: ParsedEmotion) -> str | None:
    """The seed's education branches, read off the model's own report: confused ->
    another explanation; bored -> an exercise; understanding -> the next topic."""
    if report.emotion is Emotion.ANXIOUS:
        return (
            "The learner sounds confused: explain the same idea another way (an example "
            "or a simpler step)."
        )
    if report.emotion is Emotion.SAD and report.energy_level is EnergyLevel.LOW:
        return "The learner sounds bored: switch to a short interactive exercise."
    if report.emotion in (Emotion.HAPPY, Emotion.NEUTRAL):
        return f"If the learner has understood, call {NEXT_TOPIC} to move on."
    return None


_COMMON_ADVICE = {
    Trend.INSUFFICIENT_DATA: "Not enough turns yet",
    Trend.STABLE: "Carry on",
    Trend.IMPROVING: "The conversation is going better",
}

GENERAL = Profile(
    key="general",
    title="General assistant",
    instruction=(
        "You are EmoDesk, a helpful voice assistant. Keep replies short and conversational, "
        "since they are spoken aloud. Ask a short question when a request is unclear."
    ),
    emotion_rules=(
        "If the user sounds frustrated or upset, acknowledge it briefly and slow down; "
        "otherwise simply help."
    ),
    trend_advice={
        **_COMMON_ADVICE,
        Trend.WORSENING: "Slow down and check in",
        Trend.PERSISTENT_NEGATIVE: "Acknowledge how it is going and check in",
    },
    escalation_action="Check in with the user",
)

SUPPORT = Profile(
    key="support",
    title="Customer support",
    instruction=(
        "You are a customer support agent. Find out what the customer needs, solve it step "
        "by step, and confirm each step worked. Keep replies short; they are spoken aloud. "
        "If you cannot solve the problem, offer to hand over to a human agent."
    ),
    emotion_rules=(
        "If the customer sounds angry or anxious for several turns, acknowledge it, "
        "apologise for the trouble, and offer a human agent."
    ),
    trend_advice={
        **_COMMON_ADVICE,
        Trend.WORSENING: "Acknowledge the trouble and simplify",
        Trend.PERSISTENT_NEGATIVE: "Offer a human agent",
    },
    escalation_action="Offer a human agent",
    escalation_remedy=EscalationRemedy.HAND_OFF,
    tools=(SEARCH_KNOWLEDGE_BASE,),
)

TUTOR = Profile(
    key="tutor",
    title="Tutor",
    instruction=(
        "You are a patient tutor. Explain one idea at a time, check understanding with a "
        "short question, and build on what the learner already knows. Keep replies short; "
        "they are spoken aloud."
    ),
    emotion_rules=(
        "Report confusion as anxious and boredom as sad with low energy. When the learner "
        "sounds confused or bored, try another approach: an example, a simpler step, or a "
        "different angle."
    ),
    trend_advice={
        **_COMMON_ADVICE,
        Trend.WORSENING: "Try another approach",
        Trend.PERSISTENT_NEGATIVE: "Try another approach",
    },
    escalation_action="Try another approach",
    escalation_remedy=EscalationRemedy.ASK_AGAIN,
    tools=(SEARCH_COURSE_MATERIAL, NEXT_TOPIC),
    next_step=_tutor_next_step,
)

WELLNESS = Profile(
    key="wellness",
    title="Wellness check-in",
    instruction=(
        "You are a supportive companion for a short daily check-in. Listen, reflect back "
        "briefly, and ask open questions. You are not a therapist and you do not diagnose. "
        "If the user mentions danger to themselves or others, urge them to contact local "
        "emergency services. Keep replies short; they are spoken aloud."
    ),
    emotion_rules=(
        "If the user sounds sad, anxious or angry for many turns, gently suggest talking "
        "to a professional or someone they trust."
    ),
    trend_advice={
        **_COMMON_ADVICE,
        Trend.WORSENING: "Slow down and listen",
        Trend.PERSISTENT_NEGATIVE: "Suggest professional help",
    },
    escalation_action="Suggest professional help",
    offers_session_report=True,
    escalation_remedy=EscalationRemedy.SESSION_REPORT,
)

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {profile.key: profile for profile in (GENERAL, SUPPORT, TUTOR, WELLNESS)}
)


def get_profile(key: str) -> Profile:
    """The profile for `key`; KeyError naming the valid keys otherwise."""
    try:
        return PROFILES[key]
    except (KeyError, TypeError):
        raise KeyError(
            f"unknown profile {key!r}; choose one of: {', '.join(sorted(PROFILES))}"
        ) from None


def clean_language(language: object) -> str:
    """A language name safe to put in the instruction: one line, short, not empty."""
    if not isinstance(language, str):
        return DEFAULT_LANGUAGE
    words = " ".join("".join(ch if ch.isprintable() else " " for ch in language).split())
    words = words.rstrip(".").strip()
    if not words or len(words) > _MAX_LANGUAGE_CHARS:
        return DEFAULT_LANGUAGE
    return words


def system_instruction(profile: Profile, language: str, consent: bool) -> str:
    """The full system instruction: the role, the language, and (only with consent) the
    request to report emotions plus the profile's emotion rules."""
    parts = [profile.instruction, f"Respond in {clean_language(language)}."]
    if consent is True:
        adaptation = "\n".join(f"- {rule}" for rule in EMOTION_ADAPTATION.values())
        parts += [
            _REPORT_RULE,
            f"Adapt each reply to how the user sounds:\n{adaptation}",
            f"In this role: {profile.emotion_rules}",
            "The app may add a short note to its answer to that function (how the "
            "conversation is going, or what to do next); take it into account.",
        ]
    return "\n\n".join(parts)
