from datetime import UTC, datetime, timedelta, timezone

import pytest

from emodesk.core.consent import (
    CONSENT_TEXT,
    CONSENT_TITLE,
    CONSENT_VERSION,
    ConsentRecord,
    consent_given,
)


@pytest.mark.parametrize(
    "phrase",
    [
        "emotional expression",  # what
        "pitch, loudness and pace",  # from what
        "judgment of the AI model",
        "model provider",  # where it goes
        "this computer only",
        "Raw audio is never stored",
        "not a diagnosis",
        "withdraw consent at any time",
        "from your next turn",
    ],
)
def test_consent_text_says_what_the_design_requires(phrase: str) -> None:
    assert phrase in CONSENT_TEXT


def test_consent_text_is_plain_text() -> None:
    assert CONSENT_TITLE and CONSENT_VERSION == "2026-11-2"
    assert "<" not in CONSENT_TEXT and "*" not in CONSENT_TEXT


def test_records_count_only_when_granted_for_the_current_text() -> None:
    moment = datetime(2026, 11, 22, tzinfo=UTC)
    assert consent_given(ConsentRecord.grant(moment))
    assert not consent_given(ConsentRecord.decline(moment))
    assert not consent_given(ConsentRecord(True, "2025-01-1", moment))
    assert not consent_given(None)
    assert ConsentRecord.grant().utc.tzinfo is UTC


def test_record_time_is_aware_and_normalised_to_utc() -> None:
    plus_one = timezone(timedelta(hours=1))
    record = ConsentRecord(True, CONSENT_VERSION, datetime(2026, 1, 1, 13, tzinfo=plus_one))
    assert record.utc == datetime(2026, 1, 1, 12, tzinfo=UTC)
    with pytest.raises(ValueError):
        ConsentRecord(True, CONSENT_VERSION, datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        ConsentRecord("yes", CONSENT_VERSION, record.utc)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ConsentRecord(True, " ", record.utc)
