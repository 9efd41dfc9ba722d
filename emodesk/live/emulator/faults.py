"""Fault switches for the emulator: "drop@2,goaway@3,close1011@4,close1007@1,slow@2,
burst@2,malformed@1,goawayreply@2,droptool@2,dropreply@2,badreply@2,stall@2,flood@1,
textflood@1,oddpcm@1,badrate@1,goawaysetup@*,badsetup@*,nosetup@*,textreply@1". The number
is the user turn of the conversation at which the fault fires (a resumed session keeps
counting); each numbered fault fires once per server, so the retried turn after a resume
goes through. `kind@*` fires on every turn, and
`EmulatorServer.arm(kind)` fires at the next turn of whichever connection gets there.

- drop: the TCP connection is cut without a close frame when the turn's input ends.
- goaway: `goAway` when the turn starts; the connection closes a second later.
- goawayreply: `goAway` (time left 50 s) halfway through the reply's audio; the
  connection closes when the time is up.
- close1011 / close1007: a close frame with that code when the turn's input ends.
- slow: the reply starts late (`slow_delay_s`).
- burst: the reply's audio comes all at once instead of paced.
- malformed: before the reply, a frame that is not valid JSON (a transcript cut short,
  5 kB), one that is JSON but not an object, and an object of unknown fields.
- droptool: the TCP connection is cut right after the tool response arrives, before any
  reply audio (the client must send the turn again: the server never completed it).
- dropreply: the TCP connection is cut halfway through the reply's audio.
- badreply: halfway through the reply, one JSON frame the SDK cannot read (a field of the
  wrong type); the reply then goes on.
- stall: the reply stops halfway and nothing more comes; the connection stays open.
- flood: the reply's audio never ends, sent as fast as the socket takes it.
- textflood: the reply's transcription never ends (1 kB pieces, as fast as possible).
- oddpcm: the reply's audio comes in chunks of odd byte counts (samples split across
  chunks, as a careless server could send them).
- badrate: the reply's first chunk is 8 kHz audio labelled rate=8000, one chunk is
  labelled rate=0, the rest is 24 kHz as usual.
- goawaysetup: `goAway` right after the setup is complete (with `@*`: on every
  connection), the connection closed a second later.
- textreply: the reply is one text part that starts with an emotion JSON header
  (Pattern 2 of a text-output model) instead of audio.
- badsetup: the answer to the setup is 900 kB that is not JSON (a transcript cut short).
- nosetup: the setup is never answered; the connection stays open.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    DROP = "drop"
    GOAWAY = "goaway"
    GOAWAY_REPLY = "goawayreply"
    CLOSE_1011 = "close1011"
    CLOSE_1007 = "close1007"
    SLOW = "slow"
    BURST = "burst"
    MALFORMED = "malformed"
    DROP_AFTER_TOOL = "droptool"
    DROP_MID_REPLY = "dropreply"
    BAD_REPLY_FRAME = "badreply"
    STALL = "stall"
    FLOOD = "flood"
    TEXT_FLOOD = "textflood"
    ODD_PCM = "oddpcm"
    BAD_RATE = "badrate"
    GOAWAY_AT_SETUP = "goawaysetup"
    TEXT_REPLY = "textreply"
    BAD_SETUP_REPLY = "badsetup"
    NO_SETUP_REPLY = "nosetup"


class FaultSpecError(ValueError):
    """A fault list that cannot be parsed; the message names the bad item."""


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    turn: int | None  # None: every turn


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Faults by turn. The plan fires each fault once (per server), so a client that
    resumes is not hit by the same fault again on the retried turn."""

    faults: tuple[Fault, ...] = ()

    def at(self, turn: int) -> frozenset[FaultKind]:
        return frozenset(f.kind for f in self.faults if f.turn is None or f.turn == turn)

    def __bool__(self) -> bool:
        return bool(self.faults)


def parse_faults(spec: str) -> FaultPlan:
    items = [item.strip() for item in spec.split(",") if item.strip()]
    faults: list[Fault] = []
    for item in items:
        name, sep, when = item.partition("@")
        try:
            kind = FaultKind(name.strip().lower())
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise FaultSpecError(f"unknown fault {name!r} in {item!r} (known: {known})") from None
        if not sep:
            raise FaultSpecError(f"{item!r}: give the turn as {name}@N (or {name}@*)")
        when = when.strip()
        if when == "*":
            faults.append(Fault(kind, None))
            continue
        if not when.isdigit() or int(when) < 1:
            raise FaultSpecError(f"{item!r}: the turn must be a whole number >= 1 or *")
        faults.append(Fault(kind, int(when)))
    return FaultPlan(tuple(faults))
