"""Transcript redaction: each kind on examples, the synthetic test set's recall and
false-positive rate held above a floor, and the history storing masked text (or the
verbatim text when the setting says so)."""

from __future__ import annotations

import sqlite3

import pytest

from bench.redaction_corpus import NAMES_SETTING, corpus, score
from emodesk.store import SessionStore
from emodesk.store.redaction import Redactor, names_from_setting, redact, redactor_for
from tests.store.factories import make_meta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to ada.l@example.com today", "write to [email] today"),
        ("my number is +44 20 7946 0958", "my number is [phone]"),
        ("call (415) 555-2671 tonight", "call [phone] tonight"),
        ("card 4111 1111 1111 1111 please", "card [card] please"),
        ("IBAN GB82 WEST 1234 5698 7654 32 at my bank", "IBAN [iban] at my bank"),
        ("I live at 221B Baker Street now", "I live at [address] now"),
        ("send it to Hauptstraße 5 in Berlin", "send it to [address] in Berlin"),
    ],
)
def test_each_kind_is_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the meeting is on 2024-05-01 at 10:30",
        "order 48213 shipped, I paid 1344.27 euros",
        "we're on version 3.11.4 and I read 3 books on street art",
        "card 4111 1111 1111 1112 failed the check",  # not Luhn-valid
        "Adam came over",
    ],
)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert Redactor(names_from_setting("Ada")).redact(text) == text


def test_configured_names_as_whole_words_ignoring_case() -> None:
    redactor = Redactor(names_from_setting("Ada Lovelace; Grace"))
    assert redactor.redact("ADA here, and grace. Ada Lovelace too") == (
        "[name] here, and [name]. [name] too"
    )
    assert names_from_setting(" Ada  Lovelace , Al") == ("Ada Lovelace", "Ada", "Lovelace", "Al")


def test_redacting_twice_changes_nothing() -> None:
    once = redact("mail a@example.com or call +1 415 555 2671, card 4111111111111111")
    assert redact(once) == once


def test_synthetic_set_recall_and_false_positives() -> None:
    lines = corpus()
    assert len(lines) == 500
    result = score(Redactor(names_from_setting(NAMES_SETTING)).redact, lines)
    # bench/bench_redaction.py prints these (98.9% and 0.5% when written); the README
    # states them. Email, card, IBAN, address and name are found in every line.
    assert result.recall >= 0.97, result.misses
    assert result.false_positive_rate <= 0.02, result.false_hits
    for kind in ("email", "card", "iban", "name"):
        assert result.found[kind] == result.total[kind], result.misses


def test_corpus_is_the_same_every_time() -> None:
    assert corpus() == corpus()


def test_history_stores_masked_text(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    store.add_transcript(meta.session_id, 1, "user", "I'm bob@example.com, call +44 20 7946 0958")
    assert store.transcript(meta.session_id) == [(1, "user", "I'm [email], call [phone]")]
    raw = sqlite3.connect(store.path).execute("SELECT text FROM transcript").fetchall()
    assert raw == [("I'm [email], call [phone]",)]


def test_verbatim_setting_and_names(store: SessionStore) -> None:
    meta = make_meta()
    store.start_session(meta)
    store.redactor = redactor_for(False)
    store.add_transcript(meta.session_id, 1, "user", "I'm bob@example.com")
    store.redactor = redactor_for(True, "Bob")
    store.add_transcript(meta.session_id, 2, "user", "Bob again: bob@example.com")
    assert [text for _, _, text in store.transcript(meta.session_id)] == [
        "I'm bob@example.com",
        "[name] again: [email]",
    ]
