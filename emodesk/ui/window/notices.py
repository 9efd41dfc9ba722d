"""How each controller notice shows, as data: `NOTICES` maps every `NoticeKind` to a
`NoticeView` (a banner of some severity with the button that fixes it, or a passing
status-bar message), and `REMEDIES` maps a profile's escalation remedy to the
escalation banner's button. `NoticePresenter` applies the table; nothing here decides
per kind in code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from emodesk.conversation.api import Notice, NoticeKind
from emodesk.core.profiles import EscalationRemedy, get_profile
from emodesk.ui.banners import BannerArea

# The tutor profile's escalation button says this, as the user, to the model.
ANOTHER_APPROACH = "I am not following. Could you explain that another way, more simply?"


class Severity(StrEnum):
    """A banner's look (`theme.BANNER_STYLES`)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class NoticeTarget(Protocol):
    """What a notice's button can do, and what decides whether it shows: the window."""

    @property
    def consent(self) -> bool: ...

    @property
    def profile(self) -> str: ...

    def open_settings(self, tab: str = ...) -> object: ...

    def reconnect_now(self) -> None: ...

    def connect_now(self) -> None: ...

    def open_export_dialog(self, fmt: str = ..., session_id: str | None = ...) -> object: ...

    def send_text(self, text: str) -> None: ...

    def show_session_report(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    run: Callable[[NoticeTarget], object]


@dataclass(frozen=True, slots=True)
class NoticeView:
    """How one kind of notice shows.

    `text` is a template: `{message}` is the notice's message, `{advice}` its action
    text or else its message. With a `severity` it is a banner (one per kind: a new one
    replaces the old) whose `button` is labelled by the notice's own action text when it
    has one; without, a status-bar message for `status_ms`. `clears` are the banners this
    notice ends. An `escalation` shows only with consent, and its button is the
    profile's remedy (`REMEDIES`), not `button`."""

    severity: Severity | None
    text: str = "{message}"
    button: Button | None = None
    clears: tuple[NoticeKind, ...] = ()
    status_ms: int = 8000
    escalation: bool = False


def _open_settings(tab: str) -> Callable[[NoticeTarget], object]:
    return lambda target: target.open_settings(tab)


K = NoticeKind
NOTICES: Mapping[NoticeKind, NoticeView] = MappingProxyType(
    {
        # The button does what the profile's advice asks where the app can (the trend
        # stays on the timeline's header).
        K.ESCALATION: NoticeView(Severity.ERROR, "Escalation — {advice}", escalation=True),
        K.MIC_LOST: NoticeView(
            Severity.ERROR,
            "Microphone lost: {message}",
            Button("Choose a microphone…", _open_settings("Audio")),
        ),
        K.SPEAKER_LOST: NoticeView(
            Severity.ERROR, button=Button("Choose a speaker…", _open_settings("Audio"))
        ),
        # The devices work again (or another one stands in): the loss is over.
        K.AUDIO_DEVICE: NoticeView(None, "Audio {message}", clears=(K.MIC_LOST, K.SPEAKER_LOST)),
        K.INVALID_KEY: NoticeView(
            Severity.ERROR,
            "The API key was rejected: {message}",
            Button("Enter a valid key…", _open_settings("API key")),
        ),
        K.RECONNECTING: NoticeView(
            Severity.WARNING,
            "Connection lost, reconnecting ({message})",
            Button("Reconnect now", lambda target: target.reconnect_now()),
        ),
        K.RECONNECTED: NoticeView(
            None, "Connection restored", clears=(K.RECONNECTING,), status_ms=4000
        ),
        K.CONNECTION_FAILED: NoticeView(
            Severity.ERROR,
            "Could not connect: {message}",
            Button("Try again", lambda target: target.connect_now()),
            clears=(K.RECONNECTING,),
        ),
        K.STORAGE: NoticeView(
            Severity.WARNING, button=Button("Open settings…", _open_settings("Privacy"))
        ),
        # Passing news, like a restored connection: the turn's row in the transcript
        # keeps the reason; the next turn can go ahead.
        K.TURN_FAILED: NoticeView(None),
        K.SERVER_DATA: NoticeView(None),
        K.AUDIO_DROPPED: NoticeView(Severity.WARNING),
        K.ESTIMATION: NoticeView(Severity.WARNING),
    }
)
# A kind the table does not know yet still shows (tests keep the table complete).
UNKNOWN = NoticeView(Severity.WARNING)

REMEDIES: Mapping[EscalationRemedy, Button] = MappingProxyType(
    {
        EscalationRemedy.HAND_OFF: Button(
            "Export for a human agent…", lambda target: target.open_export_dialog("handoff")
        ),
        EscalationRemedy.ASK_AGAIN: Button(
            "Ask for another approach", lambda target: target.send_text(ANOTHER_APPROACH)
        ),
        EscalationRemedy.SESSION_REPORT: Button(
            "Session report…", lambda target: target.show_session_report()
        ),
        EscalationRemedy.ACKNOWLEDGE: Button("Got it", lambda target: None),
    }
)


class NoticePresenter:
    """Shows notices as `NOTICES` says: banners in `banners`, passing messages through
    `status(text, ms)`; buttons act on `target`."""

    def __init__(
        self,
        banners: BannerArea,
        status: Callable[[str, int], None],
        target: NoticeTarget,
    ) -> None:
        self.banners = banners
        self.status = status
        self.target = target

    def show(self, notice: Notice) -> None:
        view = NOTICES.get(notice.kind, UNKNOWN)
        if view.escalation and not self.target.consent:
            return
        for kind in view.clears:
            self.banners.dismiss(kind)
        text = view.text.format(message=notice.message, advice=notice.action or notice.message)
        if view.severity is None:
            self.status(text, view.status_ms)
            return
        button = self.button(view, notice)
        if button is None:
            self.banners.show_banner(notice.kind, view.severity, text)
            return
        target = self.target

        def act() -> None:
            button.run(target)

        self.banners.show_banner(notice.kind, view.severity, text, button.label, act)

    def button(self, view: NoticeView, notice: Notice) -> Button | None:
        if view.escalation:
            return REMEDIES[get_profile(self.target.profile).escalation_remedy]
        if view.button is None:
            return None
        return Button(notice.action or view.button.label, view.button.run)
