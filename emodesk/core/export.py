"""Timeline export: the design's CSV, a JSON document, and atomic file writes.

CSV: RFC 4180 (csv module, CRLF line ends), UTF-8, one header row (`CSV_COLUMNS`).
Numbers have fixed decimals (3) so the same readings always give the same bytes;
`utc` is ISO 8601 in UTC with milliseconds and a `Z`; `escalate` is `true`/`false`;
arousal and valence are empty cells for the model source. Text cells that a spreadsheet
would read as a formula (starting with = + - @ tab or CR) get a leading apostrophe.
Numbers we format ourselves are left alone: "-0.250" is a number, not a formula.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from emodesk.core.emotion import EmotionReading, InvalidReading
from emodesk.core.timeline import TimelineEntry
from emodesk.core.tracker import Trend

CSV_COLUMNS: tuple[str, ...] = (
    "session_id",
    "turn",
    "source",
    "t_start_s",
    "t_end_s",
    "utc",
    "emotion",
    "confidence",
    "energy_level",
    "arousal",
    "valence",
    "trend",
    "escalate",
)

JSON_FORMAT = "emodesk-timeline"
JSON_VERSION = 1
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DECIMALS = 3


class ExportError(OSError):
    """A timeline file could not be written; `str()` is a message for the user."""

    def __str__(self) -> str:
        return str(self.strerror)


class TimelineFormatError(ValueError):
    """A timeline file that is not in EmoDesk's format."""


@dataclass(frozen=True, slots=True)
class SessionMetadata:
    session_id: str
    started_utc: datetime
    voice: str
    model: str
    profile: str
    consent_version: str | None
    language: str

    def __post_init__(self) -> None:
        if not isinstance(self.started_utc, datetime) or self.started_utc.tzinfo is None:
            raise ValueError("started_utc must be a timezone-aware datetime")
        object.__setattr__(self, "started_utc", self.started_utc.astimezone(UTC))


def new_session_id() -> str:
    """A random session id (16 hex digits); never derived from names or devices."""
    return secrets.token_hex(8)


def format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, e.g. 2026-11-22T07:38:36.120Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """The inverse of `format_utc` (also accepts an offset instead of `Z`)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return value.astimezone(UTC)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.{_DECIMALS}f}"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, _DECIMALS)


def neutralise_cell(text: str) -> str:
    """Prefix an apostrophe to text a spreadsheet would run as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_row(session_id: str, entry: TimelineEntry) -> list[str]:
    reading = entry.reading
    return [
        neutralise_cell(session_id),
        str(reading.turn),
        reading.source.value,
        _number(reading.t_start_s),
        _number(reading.t_end_s),
        format_utc(reading.utc),
        reading.emotion.value,
        _number(reading.confidence),
        reading.energy_level.value,
        _number(reading.arousal),
        _number(reading.valence),
        entry.trend.value,
        "true" if entry.escalate else "false",
    ]


def timeline_csv(session_id: str, entries: Iterable[TimelineEntry]) -> str:
    """The design's CSV for these entries (header row included, even with no entries)."""
    if not isinstance(session_id, str):
        raise TypeError("session_id must be text")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow(_csv_row(session_id, entry))
    return buffer.getvalue()


def read_timeline_csv(text: str) -> list[dict[str, str]]:
    """The rows of a timeline CSV as column -> cell text (a UTF-8 BOM is tolerated).

    Raises `TimelineFormatError` when the header is not `CSV_COLUMNS` or a row has the
    wrong number of cells."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, None)
        if header is None or tuple(header) != CSV_COLUMNS:
            raise TimelineFormatError("not an EmoDesk timeline: the header row differs")
        rows: list[dict[str, str]] = []
        for line_number, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(CSV_COLUMNS):
                raise TimelineFormatError(
                    f"row {line_number} has {len(cells)} cells, expected {len(CSV_COLUMNS)}"
                )
            rows.append(dict(zip(CSV_COLUMNS, cells, strict=True)))
    except csv.Error as exc:
        raise TimelineFormatError(f"not a readable CSV: {exc}") from None
    return rows


def entry_json(entry: TimelineEntry) -> dict[str, object]:
    """One reading with its verdict, as the JSON exports (timeline, handoff) write it."""
    reading = entry.reading
    return {
        "turn": reading.turn,
        "source": reading.source.value,
        "t_start_s": _rounded(reading.t_start_s),
        "t_end_s": _rounded(reading.t_end_s),
        "utc": format_utc(reading.utc),
        "emotion": reading.emotion.value,
        "confidence": _rounded(reading.confidence),
        "energy_level": reading.energy_level.value,
        "arousal": _rounded(reading.arousal),
        "valence": _rounded(reading.valence),
        "trend": entry.trend.value,
        "escalate": entry.escalate,
    }


def timeline_json(meta: SessionMetadata, entries: Iterable[TimelineEntry]) -> str:
    """A JSON document: {"format", "version", "session": {...}, "readings": [...]}."""
    document = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "session": {
            "session_id": meta.session_id,
            "started_utc": format_utc(meta.started_utc),
            "voice": meta.voice,
            "model": meta.model,
            "profile": meta.profile,
            "consent_version": meta.consent_version,
            "language": meta.language,
        },
        "readings": [entry_json(entry) for entry in entries],
    }
    return json.dumps(document, ensure_ascii=False, allow_nan=False, indent=1) + "\n"


def _text(mapping: Mapping[str, object], key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str):
        raise TimelineFormatError(f"{key} must be text")
    return value


def read_timeline_json(text: str) -> tuple[SessionMetadata, list[TimelineEntry]]:
    """The inverse of `timeline_json` (numbers come back rounded to 3 decimals)."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise TimelineFormatError(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT:
        raise TimelineFormatError("not an EmoDesk timeline document")
    if document.get("version") != JSON_VERSION:
        raise TimelineFormatError(f"unsupported version {document.get('version')!r}")
    session, readings = document.get("session"), document.get("readings")
    if not isinstance(session, dict) or not isinstance(readings, list):
        raise TimelineFormatError("the document needs a session object and a readings list")
    consent_version = session.get("consent_version")
    if consent_version is not None and not isinstance(consent_version, str):
        raise TimelineFormatError("consent_version must be text or null")
    try:
        meta = SessionMetadata(
            session_id=_text(session, "session_id"),
            started_utc=parse_utc(_text(session, "started_utc")),
            voice=_text(session, "voice"),
            model=_text(session, "model"),
            profile=_text(session, "profile"),
            consent_version=consent_version,
            language=_text(session, "language"),
        )
        entries = []
        for item in readings:
            if not isinstance(item, dict):
                raise TimelineFormatError("every reading must be an object")
            reading = EmotionReading(
                turn=item.get("turn"),  # type: ignore[arg-type]  # validated by the reading
                source=item.get("source"),  # type: ignore[arg-type]
                t_start_s=item.get("t_start_s"),  # type: ignore[arg-type]
                t_end_s=item.get("t_end_s"),  # type: ignore[arg-type]
                emotion=item.get("emotion"),  # type: ignore[arg-type]
                confidence=item.get("confidence"),  # type: ignore[arg-type]
                energy_level=item.get("energy_level"),  # type: ignore[arg-type]
                arousal=item.get("arousal"),
                valence=item.get("valence"),
                utc=parse_utc(_text(item, "utc")),
            )
            escalate = item.get("escalate")
            if not isinstance(escalate, bool):
                raise TimelineFormatError("escalate must be true or false")
            entries.append(TimelineEntry(reading, Trend(_text(item, "trend")), escalate))
    except (InvalidReading, ValueError, TypeError) as exc:
        if isinstance(exc, TimelineFormatError):
            raise
        raise TimelineFormatError(f"a value cannot be read: {exc}") from None
    return meta, entries


def _not_a_folder(path: Path) -> Path:
    """The nearest existing ancestor of `path` (a file where a folder should be)."""
    for ancestor in path.parents:
        if ancestor.exists():
            return ancestor
    return path.parent


def _reason(exc: OSError, path: Path) -> str:
    """Why `path` could not be written, as the end of a sentence."""
    code = exc.errno
    if code == errno.EROFS:
        return "the file system is read-only"
    if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if isinstance(exc, FileNotFoundError) or code == errno.ENOENT:
        return f"the folder {path.parent} does not exist"
    if isinstance(exc, NotADirectoryError) or code == errno.ENOTDIR:
        return f"{_not_a_folder(path)} is a file, not a folder"
    if isinstance(exc, IsADirectoryError) or code == errno.EISDIR:
        return "it is a folder, not a file"
    if code == errno.ENOSPC:
        return "the disk is full (no space left on device)"
    if code == errno.EDQUOT:
        return "the disk quota is used up"
    reason = exc.strerror or str(exc) or "unknown error"
    return reason[:1].lower() + reason[1:]


def _message(exc: OSError, path: Path) -> str:
    """One sentence naming the file and the reason: "Could not write /x/y.csv: ..."."""
    return f"Could not write {path}: {_reason(exc, path)}"


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; best effort (not every system can open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 text (line ends as given) atomically, as `write_bytes_atomic` does.
    Raises `ExportError` with a user-facing message (also for text UTF-8 cannot hold)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        why = f"the text cannot be saved as UTF-8 ({exc.reason})"
        raise ExportError(errno.EINVAL, f"Could not write {path}: {why}") from exc
    write_bytes_atomic(path, data)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` so that `path` holds either its old content or all of `data`, never a
    part: a temporary file in the same folder, flushed and synced, then renamed over
    `path`. Raises `ExportError` with a user-facing message and leaves no temporary file.
    A new file is readable by its owner only (mkstemp's 0600): recordings and timelines
    are personal."""
    target = Path(path)
    temp_name: str | None = None
    try:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(target))
        fd, temp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or "."
        )
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
        temp_name = None
        _sync_folder(target.parent)
    except OSError as exc:
        raise ExportError(exc.errno or errno.EIO, _message(exc, target), str(target)) from exc
    finally:
        if temp_name is not None:
            with contextlib.suppress(OSError):  # already gone: nothing to clean up
                os.unlink(temp_name)


def unwritable_reason(path: str | os.PathLike[str]) -> str:
    """Why `path` cannot be written, or "" if it can: checked before long work (a
    conversation) whose result would otherwise be lost at the end. The folder is probed
    with a temporary file, which also catches read-only file systems and quotas that
    permission bits (and root) do not show."""
    if not os.fspath(path).strip():
        return "No file name given"
    target = Path(path)
    if target.is_dir():
        return f"{target} is a folder, not a file"
    if target.exists() and not os.access(target, os.W_OK):
        return f"No permission to write {target}"
    folder = target.parent
    if not folder.exists():
        return f"The folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        return _reason(exc, target)  # callers say which file: "cannot write --csv: ..."
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return ""
