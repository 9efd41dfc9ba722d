"""Any past session exports to CSV or JSON that reads back to the same timeline."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from emodesk.core.export import CSV_COLUMNS, read_timeline_csv, read_timeline_json
from emodesk.store import SessionNotFound, SessionStore, StoreError
from tests.store.factories import make_entry, make_meta


@pytest.fixture
def past_session(store: SessionStore) -> tuple[str, list]:  # type: ignore[type-arg]
    meta = make_meta()
    store.start_session(meta)
    entries = [make_entry(turn, acoustic=turn % 3 != 0) for turn in range(8)]
    for entry in entries:
        store.add_reading(meta.session_id, entry)
    store.add_transcript(meta.session_id, 1, "user", "never in the export")
    store.end_session(meta.session_id)
    return meta.session_id, entries


def test_json_export_round_trips(store: SessionStore, past_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session_id, entries = past_session
    out = tmp_path / "timeline.json"
    store.export_session(session_id, out, fmt="json")
    text = out.read_text(encoding="utf-8")
    meta, read_back = read_timeline_json(text)
    assert meta == store.session_metadata(session_id)
    assert read_back == entries
    assert "never in the export" not in text


def test_csv_export_round_trips(store: SessionStore, past_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session_id, entries = past_session
    out = tmp_path / "timeline.csv"
    store.export_session(session_id, out)
    text = out.read_text(encoding="utf-8")
    rows = read_timeline_csv(text)
    assert len(rows) == len(entries)
    assert set(rows[0]) == set(CSV_COLUMNS)
    for row, entry in zip(rows, entries, strict=True):
        reading = entry.reading
        assert row["session_id"] == session_id
        assert int(row["turn"]) == reading.turn
        assert row["emotion"] == reading.emotion.value
        assert float(row["confidence"]) == pytest.approx(reading.confidence, abs=5e-4)
        assert row["trend"] == entry.trend.value
        assert row["escalate"] == ("true" if entry.escalate else "false")
        assert row["arousal"] == ("" if reading.arousal is None else f"{reading.arousal:.3f}")
    assert "never in the export" not in text


def test_export_of_an_unknown_session_is_a_typed_error(store: SessionStore, tmp_path: Path) -> None:
    with pytest.raises(SessionNotFound):
        store.export_session("nope", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_export_to_a_missing_folder_is_a_store_error(
    store: SessionStore,
    past_session,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    session_id, _ = past_session
    with pytest.raises(StoreError, match="does not exist"):
        store.export_session(session_id, tmp_path / "missing" / "x.csv")


def test_an_unknown_format_is_refused(store: SessionStore, past_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session_id, _ = past_session
    with pytest.raises(StoreError, match="format"):
        store.export_session(session_id, tmp_path / "x.xml", fmt="xml")


def test_an_export_that_cannot_be_written_says_where_and_why_once(
    store: SessionStore,
    past_session,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    session_id, _ = past_session
    (tmp_path / "notes").write_text("a file, not a folder")
    target = tmp_path / "notes" / "x.csv"
    with pytest.raises(StoreError) as caught:
        store.export_session(session_id, target)
    assert (
        str(caught.value)
        == f"Could not write {target}: {tmp_path / 'notes'} is a file, not a folder"
    )


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_export_is_readable_by_its_owner_only(
    store: SessionStore,
    past_session,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    fmt: str,
) -> None:
    os.umask(0o022)  # even without the app's umask (the conftest restores it)
    session_id, _ = past_session
    out = tmp_path / f"t.{fmt}"
    out.write_text("an older export, world-readable")
    out.chmod(0o644)
    store.export_session(session_id, out, fmt=fmt)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
