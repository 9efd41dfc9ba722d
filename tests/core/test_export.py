import csv
import errno
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emodesk.core.emotion import Emotion, EmotionReading, EnergyLevel, Source
from emodesk.core.export import (
    CSV_COLUMNS,
    ExportError,
    SessionMetadata,
    TimelineFormatError,
    new_session_id,
    read_timeline_csv,
    read_timeline_json,
    timeline_csv,
    timeline_json,
    unwritable_reason,
    write_bytes_atomic,
    write_text_atomic,
)
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import Trend

DESIGN_HEADER = (
    "session_id,turn,source,t_start_s,t_end_s,utc,emotion,confidence,energy_level,"
    "arousal,valence,trend,escalate"
)
MOMENT = datetime(2026, 11, 22, 7, 38, 36, 120000, tzinfo=UTC)


def entry(
    turn: int = 1,
    source: Source = Source.ACOUSTIC,
    arousal: float | None = 0.25,
    valence: float | None = -0.5,
    trend: Trend = Trend.WORSENING,
    escalate: bool = True,
) -> TimelineEntry:
    reading = EmotionReading(
        turn=turn,
        source=source,
        t_start_s=1.23456,
        t_end_s=3.5,
        emotion=Emotion.ANXIOUS,
        confidence=0.87654,
        energy_level=EnergyLevel.HIGH,
        arousal=arousal,
        valence=valence,
        utc=MOMENT,
    )
    return TimelineEntry(reading, trend, escalate)


META = SessionMetadata(
    session_id="a1b2c3d4e5f60718",
    started_utc=MOMENT,
    voice="Kore",
    model="gemini-3.1-flash-live-preview",
    profile="wellness",
    consent_version="2026-11-1",
    language="Deutsch",
)


def test_header_is_exactly_the_designs() -> None:
    assert ",".join(CSV_COLUMNS) == DESIGN_HEADER
    assert timeline_csv("s", []) == DESIGN_HEADER + "\r\n"


def test_row_format_is_stable() -> None:
    text = timeline_csv(
        "s1", [entry(), entry(2, Source.MODEL, None, None, Trend.STABLE, escalate=False)]
    )
    assert text.split("\r\n") == [
        DESIGN_HEADER,
        "s1,1,acoustic,1.235,3.500,2026-11-22T07:38:36.120Z,anxious,0.877,high,0.250,-0.500,"
        "worsening,true",
        "s1,2,model,1.235,3.500,2026-11-22T07:38:36.120Z,anxious,0.877,high,,,stable,false",
        "",
    ]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_cells_are_neutralised(start: str) -> None:
    session_id = f'{start}HYPERLINK("http://x")'
    rows = read_timeline_csv(timeline_csv(session_id, [entry()]))
    assert rows[0]["session_id"] == "'" + session_id
    assert rows[0]["valence"] == "-0.500"  # our own numbers stay numbers


def test_csv_round_trip() -> None:
    entries = [entry(turn, source) for turn in range(3) for source in Source]
    rows = read_timeline_csv(timeline_csv("sess", entries))
    assert len(rows) == len(entries)
    for row, item in zip(rows, entries, strict=True):
        reading = item.reading
        assert int(row["turn"]) == reading.turn
        assert row["source"] == reading.source.value
        assert float(row["t_start_s"]) == pytest.approx(reading.t_start_s, abs=5e-4)
        assert float(row["confidence"]) == pytest.approx(reading.confidence, abs=5e-4)
        assert row["utc"] == "2026-11-22T07:38:36.120Z"
        assert row["escalate"] == "true"
        if reading.source is Source.ACOUSTIC:
            assert (row["arousal"], row["valence"]) == ("0.250", "-0.500")
        else:  # the design leaves them empty for the model
            assert (row["arousal"], row["valence"]) == ("", "")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_any_session_id_survives_the_csv(session_id: str) -> None:
    text = timeline_csv(session_id, [entry()])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 2 and len(rows[1]) == len(CSV_COLUMNS)
    cell = rows[1][0]
    assert cell == session_id or cell == "'" + session_id
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "header"),
        ("a,b,c\r\n", "header"),
        (DESIGN_HEADER + "\r\n1,2,3\r\n", "row 2 has 3 cells"),
    ],
)
def test_reading_a_foreign_csv_says_why(text: str, reason: str) -> None:
    with pytest.raises(TimelineFormatError, match=reason):
        read_timeline_csv(text)


def test_reading_tolerates_a_bom_and_blank_lines() -> None:
    text = "\ufeff" + timeline_csv("s", [entry()]) + "\r\n"
    assert len(read_timeline_csv(text)) == 1


def test_json_round_trip() -> None:
    entries = [entry(), entry(2, Source.MODEL, None, None, Trend.STABLE, escalate=False)]
    text = timeline_json(META, entries)
    document = json.loads(text)
    assert document["format"] == "emodesk-timeline" and document["version"] == 1
    assert document["session"]["started_utc"] == "2026-11-22T07:38:36.120Z"
    assert document["readings"][1]["arousal"] is None
    meta, back = read_timeline_json(text)
    assert meta == META
    assert [e.trend for e in back] == [Trend.WORSENING, Trend.STABLE]
    assert [e.escalate for e in back] == [True, False]
    assert back[0].reading.confidence == 0.877
    assert back[0].reading.valence == -0.5
    assert back[1].reading.source is Source.MODEL
    assert back[0].reading.utc == MOMENT


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),
        ('{"format": "other"}', "not an EmoDesk"),
        ('{"format": "emodesk-timeline", "version": 9}', "unsupported version"),
        ('{"format": "emodesk-timeline", "version": 1}', "session object"),
    ],
)
def test_reading_foreign_json_says_why(text: str, reason: str) -> None:
    with pytest.raises(TimelineFormatError, match=reason):
        read_timeline_json(text)


def test_reading_json_with_a_bad_value_says_why() -> None:
    document = json.loads(timeline_json(META, [entry()]))
    document["readings"][0]["emotion"] = "ecstatic"
    with pytest.raises(TimelineFormatError, match="ecstatic"):
        read_timeline_json(json.dumps(document))


def test_session_ids_are_random_hex() -> None:
    ids = {new_session_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


def test_metadata_needs_an_aware_start_time() -> None:
    with pytest.raises(ValueError):
        SessionMetadata("s", datetime(2026, 1, 1), "Puck", "m", "general", None, "English")


def test_atomic_write_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "timeline.csv"
    target.write_text("old")
    text = timeline_csv("s", [entry()])
    write_text_atomic(target, text)
    assert target.read_bytes() == text.encode("utf-8")  # CRLF kept, not doubled
    assert os.listdir(tmp_path) == ["timeline.csv"]


def test_atomic_write_into_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist") as caught:
        write_text_atomic(tmp_path / "nope" / "t.csv", "x")
    assert caught.value.errno == errno.ENOENT


def test_atomic_write_onto_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="is a folder"):
        write_text_atomic(tmp_path, "x")


def test_atomic_write_disk_full_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "t.csv"
    target.write_text("old")

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ExportError, match="disk is full") as caught:
        write_text_atomic(target, "new content")
    assert caught.value.errno == errno.ENOSPC
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["t.csv"]


def test_atomic_write_without_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root ignores file modes, so the refusal is simulated at the point it would occur.
    def refuse(*_args: object, **_kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    target = tmp_path / "t.csv"
    with pytest.raises(ExportError) as caught:
        write_text_atomic(target, "x")
    assert str(caught.value) == f"Could not write {target}: permission denied"
    assert os.listdir(tmp_path) == []


def test_atomic_write_rejects_text_that_is_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="UTF-8"):
        write_text_atomic(tmp_path / "t.csv", "bad \udc80 surrogate")
    assert os.listdir(tmp_path) == []


def test_atomic_bytes_write_replaces_the_whole_file_and_syncs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "take.wav"
    target.write_bytes(b"old")
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    data = bytes(range(256)) * 64
    write_bytes_atomic(target, data)
    assert target.read_bytes() == data
    assert synced, "the data must be synced before the rename"
    assert os.listdir(tmp_path) == ["take.wav"]


def test_atomic_bytes_write_failure_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "take.wav"
    target.write_bytes(b"old")

    def refuse_rename(_src: str, _dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", refuse_rename)
    with pytest.raises(ExportError, match=f"Could not write {target}") as caught:
        write_bytes_atomic(target, b"new")
    assert caught.value.errno == errno.EXDEV
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["take.wav"]


arbitrary_entries = st.lists(
    st.builds(
        lambda turn, source, start, length, emotion, conf, energy, arousal, valence, trend, esc: (
            TimelineEntry(
                EmotionReading(
                    turn=turn,
                    source=source,
                    t_start_s=start,
                    t_end_s=start + length,
                    emotion=emotion,
                    confidence=conf,
                    energy_level=energy,
                    arousal=arousal,
                    valence=valence,
                    utc=MOMENT,
                ),
                trend,
                esc,
            )
        ),
        st.integers(0, 10**6),
        st.sampled_from(list(Source)),
        st.floats(0, 1e5),
        st.floats(0, 600),
        st.sampled_from(list(Emotion)),
        st.floats(0, 1),
        st.sampled_from(list(EnergyLevel)),
        st.none() | st.floats(-1, 1),
        st.none() | st.floats(-1, 1),
        st.sampled_from(list(Trend)),
        st.booleans(),
    ),
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(arbitrary_entries)
def test_any_timeline_round_trips_through_csv_and_json(entries: list[TimelineEntry]) -> None:
    rows = read_timeline_csv(timeline_csv("sess", entries))
    meta, back = read_timeline_json(timeline_json(META, entries))
    assert meta == META and len(rows) == len(back) == len(entries)
    for row, again, item in zip(rows, back, entries, strict=True):
        reading = item.reading
        assert row["emotion"] == again.reading.emotion.value == reading.emotion.value
        assert (again.trend, again.escalate) == (item.trend, item.escalate)
        for name in ("t_start_s", "confidence", "arousal", "valence"):
            value = getattr(reading, name)
            if value is None:
                assert row[name] == "" and getattr(again.reading, name) is None
            else:
                assert float(row[name]) == pytest.approx(value, abs=5e-4)
                assert getattr(again.reading, name) == pytest.approx(value, abs=5e-4)


def test_unwritable_reason_is_empty_for_a_writable_path_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    assert unwritable_reason(tmp_path / "new.csv") == ""
    (tmp_path / "old.csv").write_text("kept")
    assert unwritable_reason(tmp_path / "old.csv") == ""
    assert sorted(os.listdir(tmp_path)) == ["old.csv"]  # the probe is gone
    assert (tmp_path / "old.csv").read_text() == "kept"


def test_unwritable_reason_says_why(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    assert unwritable_reason("") == "No file name given"
    assert unwritable_reason(tmp_path) == f"{tmp_path} is a folder, not a file"
    missing = tmp_path / "nope" / "t.csv"
    assert unwritable_reason(missing) == f"The folder {tmp_path / 'nope'} does not exist"
    under_file = tmp_path / "a_file" / "t.csv"
    assert unwritable_reason(under_file) == f"{tmp_path / 'a_file'} is a file, not a folder"


def test_unwritable_reason_sees_a_refusal_that_permission_bits_hide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root passes every os.access check; a read-only file system refuses the write itself.
    def refuse(*_args: object, **_kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    assert unwritable_reason(tmp_path / "t.csv") == "the file system is read-only"


# What a user reads when a timeline cannot be written: one sentence naming the file and
# the reason, never the same words twice.
def test_a_folder_that_is_a_file_names_the_file_and_the_reason(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("a file where the folder should be")
    target = tmp_path / "notes" / "t.csv"
    with pytest.raises(ExportError) as caught:
        write_text_atomic(target, "x")
    assert (
        str(caught.value)
        == f"Could not write {target}: {tmp_path / 'notes'} is a file, not a folder"
    )
    assert caught.value.errno == errno.ENOTDIR


def test_a_folder_deeper_under_a_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("x")
    target = tmp_path / "notes" / "deeper" / "t.csv"
    with pytest.raises(ExportError) as caught:
        write_text_atomic(target, "x")
    assert (
        str(caught.value)
        == f"Could not write {target}: {tmp_path / 'notes'} is a file, not a folder"
    )


@pytest.mark.parametrize(
    ("code", "os_text", "reason"),
    [
        (errno.ENOSPC, "No space left on device", "the disk is full (no space left on device)"),
        (errno.EROFS, "Read-only file system", "the file system is read-only"),
        (errno.EIO, "Input/output error", "input/output error"),
    ],
)
def test_an_os_refusal_is_one_sentence_with_the_os_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, os_text: str, reason: str
) -> None:
    def refuse(_fd: int) -> None:
        raise OSError(code, os_text)

    monkeypatch.setattr(os, "fsync", refuse)
    target = tmp_path / "t.csv"
    with pytest.raises(ExportError) as caught:
        write_text_atomic(target, "x")
    message = str(caught.value)
    assert message == f"Could not write {target}: {reason}"
    assert message.count(str(target)) == 1 and "failed" not in message
