"""Personal data out of transcript text before it is stored or exported.

`Redactor(names).redact(text)` replaces, with typed placeholders:

- email addresses -> `[email]` (a pattern: an address has one shape);
- IBANs -> `[iban]`, only when the mod-97 check passes (python-stdnum's `iban`);
- payment card numbers -> `[card]`, 13-19 digits that pass the Luhn check
  (python-stdnum's `luhn`);
- phone numbers -> `[phone]`, found and checked by libphonenumber's matcher
  (`phonenumbers`, the pure-Python port of Google's library, in its "lite" wheel without
  the carrier and geocoding data), for numbers written internationally (+44 ...) and
  nationally in any of `regions`;
- street-address-like phrases -> `[address]`: a house number and words ending in a
  street word ("12 Baker Street", "Hauptstraße 5", "221B Baker St.");
- the user's configured names -> `[name]`, as whole words, ignoring case.

Everything runs locally on the text given: no network, no models. Placeholders hold no
digits or at-signs, so a second pass leaves redacted text as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers
from stdnum import iban as _iban
from stdnum import luhn as _luhn

from emodesk.core.redaction import EMAIL, PHONE

CARD = "[card]"
IBAN = "[iban]"
ADDRESS = "[address]"
NAME = "[name]"
PLACEHOLDERS = (EMAIL, PHONE, CARD, IBAN, ADDRESS, NAME)

# National numbers are read as these regions write them; "+" numbers need none.
DEFAULT_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "NL", "IN")
_MIN_PHONE_DIGITS = 7  # shorter "valid" numbers are mostly prices, years and room numbers

_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# Two letters, two check digits, 11 to 30 more letters or digits, spaces every so often.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
# 13 to 19 digits in groups split by single spaces or dashes.
_CARD = re.compile(r"(?<![\d+-])\d(?:[ -]?\d){12,18}(?![\d-])")
_STREET_WORDS = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl"
    r"|terrace|crescent|close|square|sq|parkway|pkwy|highway|hwy|row|grove|gardens|walk"
)
_HOUSE = r"\d{1,5}[A-Za-z]?"
# "12 Baker Street", "221B Baker St.", "4 rue de la Paix", "1600 Pennsylvania Avenue NW".
# Capitalised words before the street word: "3 books on street art" is no address.
_ADDRESS_EN = re.compile(
    rf"\b{_HOUSE},?(?: [A-Z][\w'-]*){{1,4}} (?i:{_STREET_WORDS})\b\.?"
    r"(?: (?:N|S|E|W|NE|NW|SE|SW)\b)?"
)
_ADDRESS_FR = re.compile(
    rf"\b{_HOUSE},? (?:rue|avenue|boulevard|place|chemin|allée|quai) (?:[\w'-]+ ){{0,3}}[\w'-]+",
    re.IGNORECASE,
)
# "Hauptstraße 5", "Kerkstraat 12a", "Am Lindenweg 3".
_ADDRESS_DE = re.compile(
    rf"\b[\w-]*(?:straße|strasse|str\.|straat|weg|gasse|allee|platz|laan|plein|gracht)"
    rf" {_HOUSE}\b",
    re.IGNORECASE,
)


def _cards(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return CARD if 13 <= len(digits) <= 19 and _luhn.is_valid(digits) else match.group(0)


def _ibans(match: re.Match[str]) -> str:
    """The longest valid IBAN at the start of the run ("... 7937 AT my bank" ran on)."""
    found = match.group(0)
    for end in range(len(found), 14, -1):
        if (end == len(found) or found[end] == " ") and _iban.is_valid(found[:end]):
            return IBAN + found[end:]
    return found


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({n.strip() for n in names if n.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def names_from_setting(value: str) -> tuple[str, ...]:
    """The names setting ("Ada Lovelace, Ada") as the names to mask: each entry and
    each of its words of three letters or more ("Ada Lovelace", "Ada", "Lovelace")."""
    found: list[str] = []
    for entry in value.replace(";", ",").split(","):
        entry = " ".join(entry.split())
        if entry:
            found.append(entry)
            found += [w for w in entry.split(" ") if len(w) >= 3]
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class Redactor:
    """Masks personal data in text; `names`: the user's own names to mask as well."""

    names: tuple[str, ...] = ()
    regions: tuple[str, ...] = DEFAULT_REGIONS
    _names: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", _names_pattern(self.names))

    def redact(self, text: str) -> str:
        if not text:
            return text
        text = _EMAIL.sub(EMAIL, text)
        text = _IBAN.sub(_ibans, text)
        text = _CARD.sub(_cards, text)
        text = self._phones(text)
        for pattern in (_ADDRESS_EN, _ADDRESS_FR, _ADDRESS_DE):
            text = pattern.sub(ADDRESS, text)
        if self._names is not None:
            text = self._names.sub(NAME, text)
        return text

    def _phones(self, text: str) -> str:
        if sum(c.isdigit() for c in text) < 6:
            return text
        for region in self.regions:
            spans = [
                (match.start, match.end)
                for match in phonenumbers.PhoneNumberMatcher(
                    text, region, leniency=phonenumbers.Leniency.VALID
                )
                if sum(c.isdigit() for c in match.raw_string) >= _MIN_PHONE_DIGITS
            ]
            for start, end in reversed(spans):
                text = text[:start] + PHONE + text[end:]
        return text

    def __call__(self, text: str) -> str:
        return self.redact(text)


def redact(text: str, names: Iterable[str] = ()) -> str:
    """`text` with personal data replaced by typed placeholders (see the module)."""
    return Redactor(tuple(names)).redact(text)


def redactor_for(enabled: bool, names_setting: str = "") -> Redactor | None:
    """The history's redactor for the settings: None keeps transcripts verbatim."""
    return Redactor(names_from_setting(names_setting)) if enabled else None
