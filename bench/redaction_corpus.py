"""A synthetic test set for transcript redaction, made deterministically (seed 14).

Each `Line` is a sentence as a speech transcript could hold it and the personal data in
it (the raw text and its kind). Positive lines carry one or two items: emails, phone
numbers in international and national formats of six countries, Luhn-valid card numbers,
IBANs with correct check digits, street addresses, the user's configured names. Negative
lines carry none but look close: dates, times, prices, order and invoice numbers, versions,
room numbers, counts, Luhn-failing 16-digit numbers, words that contain a name.

`score(redact)` gives the recall (items whose raw text is gone and whose kind's
placeholder appears) per kind and overall, and the false-positive rate (negative lines
changed at all).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

NAMES_SETTING = "Ada Lovelace, Grace"
SEED = 14
_FIRST = ["anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jon"]
_LAST = ["smith", "muller", "dubois", "devries", "patel", "okafor", "rossi", "kim", "novak"]
_DOMAINS = ["example.com", "mail.example.org", "post.example.de", "uni-example.ac.uk"]
_STREETS = ["Baker", "Maple", "High", "Church", "Elm", "Mill", "Station", "Park View"]
_SUFFIXES = ["Street", "St.", "Road", "Avenue", "Lane", "Drive", "Close", "Way"]
_DE_STREETS = ["Hauptstraße", "Bahnhofstrasse", "Lindenweg", "Kerkstraat", "Schulgasse"]
_FR_STREETS = ["rue de la Paix", "avenue Victor Hugo", "boulevard Voltaire", "rue Lepic"]


@dataclass(frozen=True)
class Line:
    text: str
    items: tuple[tuple[str, str], ...] = field(default=())  # (raw text, kind)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the check digit will sit to the right
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _card(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 2:  # Amex: 15 digits, 4-6-5
        number = _luhn_complete(rng.choice(["34", "37"]) + _digits(rng, 12))
        groups = [number[:4], number[4:10], number[10:]]
    else:
        number = _luhn_complete(
            ("4" if kind == 0 else "5" + str(rng.randint(1, 5)))
            + _digits(rng, 14 if kind == 0 else 13)
        )
        groups = [number[i : i + 4] for i in range(0, 16, 4)]
    sep = rng.choice([" ", "-", ""])
    return sep.join(groups)


def _bad_card(rng: random.Random) -> str:
    number = _luhn_complete("4" + _digits(rng, 14))
    wrong = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
    return " ".join(wrong[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    country, bban = rng.choice(
        [
            ("GB", lambda: rng.choice(["WEST", "NWBK", "BARC"]) + _digits(rng, 14)),
            ("DE", lambda: _digits(rng, 18)),
            ("NL", lambda: rng.choice(["ABNA", "INGB", "RABO"]) + _digits(rng, 10)),
            ("FR", lambda: _digits(rng, 23)),
        ]
    )
    body = bban()
    numeric = "".join(str(int(c, 36)) for c in body + country + "00")
    check = 98 - int(numeric) % 97
    compact = f"{country}{check:02d}{body}"
    if rng.random() < 0.6:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def _phone(rng: random.Random) -> str:
    d = lambda n: _digits(rng, n)  # noqa: E731
    area = str(rng.randint(2, 9)) + d(2)
    exchange = str(rng.randint(2, 9)) + d(2)
    formats = [
        lambda: f"({area}) {exchange}-{d(4)}",
        lambda: f"{area}-{exchange}-{d(4)}",
        lambda: f"+1 {area} {exchange} {d(4)}",
        lambda: f"+44 20 7{d(3)} {d(4)}",
        lambda: f"020 7{d(3)} {d(4)}",
        lambda: f"07{rng.randint(4, 9)}{d(2)} {d(6)}",
        lambda: f"+49 30 {d(6)}",
        lambda: f"+49 151 {d(8)}",
        lambda: f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"06 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"+31 6 {d(8)}",
        lambda: f"+91 9{d(4)} {d(5)}",
    ]
    return rng.choice(formats)()


def _email(rng: random.Random) -> str:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    local = rng.choice([f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first}+notes"])
    return f"{local}@{rng.choice(_DOMAINS)}"


def _address(rng: random.Random) -> str:
    style = rng.randrange(3)
    if style == 0:
        number = f"{rng.randint(1, 2400)}{rng.choice(['', '', 'B'])}"
        return f"{number} {rng.choice(_STREETS)} {rng.choice(_SUFFIXES)}"
    if style == 1:
        return f"{rng.choice(_DE_STREETS)} {rng.randint(1, 120)}"
    return f"{rng.randint(1, 80)} {rng.choice(_FR_STREETS)}"


_POSITIVE = {
    "email": (
        _email,
        [
            "you can email me at {}",
            "my address is {} if you need it",
            "send the receipt to {} please",
            "it's {}, all lower case",
        ],
    ),
    "phone": (
        _phone,
        [
            "my number is {}",
            "call me back on {} after six",
            "you can reach my sister at {}",
            "the office line is {}, extension nine",
        ],
    ),
    "card": (
        _card,
        [
            "my card number is {}",
            "charge it to {} please",
            "the card ending, well the whole thing is {}",
        ],
    ),
    "iban": (
        _iban,
        ["my IBAN is {}", "please transfer it to {}", "the account is {} at my bank"],
    ),
    "address": (
        _address,
        ["I live at {}", "the package went to {} by mistake", "we moved to {} last spring"],
    ),
    "name": (
        lambda rng: rng.choice(["Ada", "Lovelace", "Ada Lovelace", "Grace", "ada"]),
        ["hi, this is {} speaking", "{} here, I wanted to ask something", "thanks, {} said no"],
    ),
}

_NEGATIVE = [
    lambda rng: (
        f"the meeting is on 2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        f" at {rng.randint(8, 18)}:{rng.choice(['00', '15', '30', '45'])}"
    ),
    lambda rng: f"order {rng.randint(10000, 99999)} shipped yesterday",
    lambda rng: f"I paid {rng.randint(1, 2000)}.{rng.randint(0, 99):02d} euros for it",
    lambda rng: f"we're on version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
    lambda rng: f"my room is {rng.randint(100, 999)} on floor {rng.randint(1, 9)}",
    lambda rng: f"I walked {rng.randint(2000, 15000)} steps today",
    lambda rng: f"it was {rng.randint(-5, 35)} degrees and {rng.randint(10, 90)} percent humid",
    lambda rng: f"invoice INV-{rng.randint(2019, 2026)}-{rng.randint(1, 999):04d} is overdue",
    lambda rng: f"call me in {rng.randint(2, 45)} minutes",
    lambda rng: f"the year {rng.randint(1950, 2025)} was a good one",
    lambda rng: f"I read {rng.randint(2, 9)} books on street art",
    lambda rng: f"page {rng.randint(1, 300)} of {rng.randint(300, 900)}",
    lambda rng: f"the score was {rng.randint(0, 5)} to {rng.randint(0, 5)}",
    lambda rng: f"that number {_bad_card(rng)} did not work",
    lambda rng: f"Adam and Gracie came over at {rng.randint(1, 12)} o'clock",
    lambda rng: f"the high street was busy around {rng.randint(1, 12)}",
    lambda rng: f"I slept {rng.randint(4, 9)} hours and {rng.randint(1, 59)} minutes",
    lambda rng: "my email was down all morning and the phone kept ringing",
    lambda rng: f"we need {rng.randint(2, 12)} chairs and {rng.randint(1, 4)} tables",
    lambda rng: f"the bus number {rng.randint(1, 300)} goes past the park",
]


def corpus(positives: int = 300, negatives: int = 200) -> list[Line]:
    """`positives` lines with personal data, then `negatives` lines without."""
    rng = random.Random(SEED)
    kinds = list(_POSITIVE)
    lines: list[Line] = []
    for i in range(positives):
        kind = kinds[i % len(kinds)]
        make, templates = _POSITIVE[kind]
        value = make(rng)
        text = rng.choice(templates).format(value)
        items = [(value, kind)]
        if rng.random() < 0.25:  # a second item, of another kind, in the same line
            other = kinds[(i + 1 + rng.randrange(len(kinds) - 1)) % len(kinds)]
            extra = _POSITIVE[other][0](rng)
            text += f", or {extra}"
            items.append((extra, other))
        lines.append(Line(text[0].upper() + text[1:] + ".", tuple(items)))
    for i in range(negatives):
        text = _NEGATIVE[i % len(_NEGATIVE)](rng)
        lines.append(Line(text[0].upper() + text[1:] + "."))
    return lines


@dataclass(frozen=True)
class Score:
    found: dict[str, int]
    total: dict[str, int]
    negatives: int
    false_positives: int
    misses: tuple[str, ...]
    false_hits: tuple[str, ...]

    @property
    def recall(self) -> float:
        return sum(self.found.values()) / max(1, sum(self.total.values()))

    @property
    def false_positive_rate(self) -> float:
        return self.false_positives / max(1, self.negatives)


def score(redact: Callable[[str], str], lines: list[Line] | None = None) -> Score:
    lines = corpus() if lines is None else lines
    found: dict[str, int] = {kind: 0 for kind in _POSITIVE}
    total: dict[str, int] = {kind: 0 for kind in _POSITIVE}
    misses: list[str] = []
    false_hits: list[str] = []
    negatives = false_positives = 0
    for line in lines:
        out = redact(line.text)
        if not line.items:
            negatives += 1
            if out != line.text:
                false_positives += 1
                false_hits.append(f"{line.text} -> {out}")
            continue
        for raw, kind in line.items:
            total[kind] += 1
            gone = raw not in out if kind != "name" else raw.lower() not in out.lower()
            if gone and f"[{kind}]" in out:
                found[kind] += 1
            else:
                misses.append(f"{kind}: {raw!r} in {out!r}")
    return Score(found, total, negatives, false_positives, tuple(misses), tuple(false_hits))
