"""The history over days, from a real file with nine days of sessions: digests, per-day
figures, the report's notes, one session deleted, retention and "delete all" over it,
and the transcript export with no personal data."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest

from emodesk.core.history import build_report, daily_stats, day_bounds, period
from emodesk.store import SessionNotFound, SessionStore
from tests.support.history_days import PERSONAL_LINE, fill_history

TODAY = date(2026, 3, 12)


@pytest.fixture
def ids(store: SessionStore) -> list[str]:
    return fill_history(store, TODAY)


def test_digests_newest_first_with_their_figures(store: SessionStore, ids: list[str]) -> None:
    digests = store.session_digests()
    assert [d.session_id for d in digests] == ids[::-1]
    newest = digests[0]
    assert newest.turns >= 4
    assert newest.readings == 2 * newest.turns
    assert newest.duration_s == pytest.approx(newest.turns * 12.0 + 20)
    assert newest.last_trend == "persistent_negative"
    assert newest.escalations > 0
    assert set(newest.mix) <= {"sad", "anxious", "angry"}
    assert store.session_digest(ids[0]).session_id == ids[0]


def test_daily_stats_cover_every_day_with_zeros_for_a_quiet_one(
    store: SessionStore, ids: list[str]
) -> None:
    first, last = period(TODAY, 9)
    since, until = day_bounds(first, last)
    days = daily_stats(
        store.session_digests(since, until), store.reading_points(since, until), first, last
    )
    assert [d.day for d in days] == [first + timedelta(days=i) for i in range(9)]
    quiet = days[-4]  # three days back: no sessions
    assert (quiet.sessions, quiet.readings, quiet.valence["acoustic"]) == (0, 0, None)
    assert sum(d.sessions for d in days) == len(ids)
    assert days[-1].arousal["model"] is None  # the model gives no arousal
    assert days[-1].valence["acoustic"] is not None and days[-1].valence["acoustic"] < 0
    assert sum(d.readings for d in days) == sum(d.readings for d in store.session_digests())


def test_report_notes_the_negative_run(store: SessionStore, ids: list[str]) -> None:
    first, last = period(TODAY, 7)
    since, until = day_bounds(first, last)
    sessions = store.session_digests(since, until)
    report = build_report(
        sessions,
        daily_stats(sessions, store.reading_points(since, until), first, last),
        first,
        last,
    )
    assert report.title.startswith("Report — ")
    assert any("sessions in a row ended persistent negative" in n for n in report.notes)
    assert report.trend.startswith("worsening")
    assert "not a diagnosis" in report.disclaimer
    one_day = build_report([], [], TODAY, TODAY)
    assert one_day.notes == ("No sessions in this period.",)


def test_delete_one_session(store: SessionStore, ids: list[str], history_path: Path) -> None:
    store.delete_session(ids[0])
    assert ids[0] not in [d.session_id for d in store.session_digests()]
    with sqlite3.connect(history_path) as conn:
        for table in ("readings", "transcript"):
            rows = conn.execute(f"SELECT count(*) FROM {table} WHERE session_id = ?", (ids[0],))
            assert rows.fetchone() == (0,)
    with pytest.raises(SessionNotFound):
        store.delete_session(ids[0])


def test_retention_and_delete_all_cover_the_history(store: SessionStore, ids: list[str]) -> None:
    newest = store.session_digests()[0]
    kept_from = newest.started_utc - timedelta(days=2)
    store.apply_retention(2, now=newest.ended_utc)
    assert all(d.started_utc >= kept_from - timedelta(hours=1) for d in store.session_digests())
    store.delete_all()
    assert store.session_digests() == []


def test_no_raw_email_or_phone_in_file_or_transcript_export(
    store: SessionStore, ids: list[str], history_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "transcript.txt"
    store.export_transcript(ids[0], out)
    text = out.read_text()
    assert "[email]" in text and "[phone]" in text
    store.checkpointer.stop()
    store.close()
    raw = b"".join(p.read_bytes() for p in history_path.parent.iterdir() if p.is_file())
    for secret in ("ada.lovelace@example.com", "7946 0958", "ada.lovelace"):
        assert secret.encode() not in raw
        assert secret not in text
    assert "ada.lovelace" in PERSONAL_LINE  # the line said had them
