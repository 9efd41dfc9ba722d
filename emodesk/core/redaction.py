"""Personal data out of text that leaves the app (the handoff file): a floor that masks
email addresses and phone numbers with typed placeholders, `[email]` and `[phone]`,
with the standard library only (core imports no third-party package).

The full redaction is `emodesk.store.redaction.Redactor` (phone numbers checked by
libphonenumber, Luhn-checked cards, IBANs, addresses, the user's names; the same
placeholders): the history applies it to every transcript line it stores and exports,
and the controller to the handoff's lines before `handoff_json` runs this pass."""

from __future__ import annotations

import re

EMAIL = "[email]"
PHONE = "[phone]"

_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}", re.UNICODE)
# 7 to 15 digits (E.164 at most 15), optionally +country, grouped by spaces, dots,
# dashes or parentheses: "+44 20 7946 0958", "(555) 123-4567", "0612345678".
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d(?:[\s().-]{0,2}\d){6,14}(?!\w)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def _phone(match: re.Match[str]) -> str:
    found = match.group(0)
    return found if _DATE.fullmatch(found.strip()) else PHONE


def redact(text: str) -> str:
    """`text` with email addresses and phone numbers replaced by placeholders."""
    return _PHONE.sub(_phone, _EMAIL.sub(EMAIL, text))
