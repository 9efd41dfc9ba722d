"""A local full-text index of a folder of Markdown and text files (a support knowledge
base, a course), in SQLite FTS5 with its BM25 ranking.

Each file is cut into passages (its `#` sections, then paragraphs joined up to
`MAX_PASSAGE_CHARS`), stored with the file's name relative to the folder. The index is
a cache: it lives in the app's data folder (`default_index_path`), never in the user's
folder, and is private to its owner. The folder is indexed when first searched (or
`refresh`ed); after that a search that comes `recheck_s` or more after the last look
starts another in the background: files whose size or modification time changed are
indexed anew, removed files are dropped, and the searches after it see them (with
`recheck_s` 0, every search looks first). A query is plain words: FTS5's own syntax
(quotes, `*`, `:`, `^`, AND/OR/NOT, parentheses) is never interpreted, so no query
can raise.

Threads: searches read on one connection, refreshes write on another, each behind its
lock (WAL: a search never waits for indexing); callers on an asyncio loop run
`search`/`refresh` in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

INDEX_VERSION = 1
SUFFIXES = frozenset({".md", ".markdown", ".txt"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
MAX_PASSAGE_CHARS = 800
MAX_FILE_BYTES = 2_000_000  # the rest of a larger file is not indexed
MAX_QUERY_TERMS = 32
# A query word found in more passages than this says little (like "the"): it is left
# out of the search when the query has rarer words, and the rarest words are searched
# for while they are in about RANKED_AT_MOST passages: BM25 costs per passage ranked,
# so a search of a large folder stays fast.
COMMON_PASSAGES = 120
RANKED_AT_MOST = 150
DEFAULT_RECHECK_S = 1.0

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files ("
    " name TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL)",
    # `file` and `ordinal` are kept, not searched; a heading weighs twice a body word.
    "CREATE VIRTUAL TABLE IF NOT EXISTS passages USING fts5("
    " file UNINDEXED, ordinal UNINDEXED, level UNINDEXED, heading, text,"
    " tokenize = 'porter unicode61 remove_diacritics 2')",
)
_BM25 = "bm25(passages, 0.0, 0.0, 0.0, 2.0, 1.0)"


class KnowledgeError(Exception):
    """The folder cannot be indexed (it is not a folder, it cannot be read)."""


@dataclass(frozen=True, slots=True)
class Passage:
    file: str  # relative to the folder, with "/" separators
    text: str
    heading: str = ""


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic of a course: a Markdown file (or, in a one-file course, a `#` section)."""

    title: str
    file: str
    text: str  # its opening passage


@dataclass(frozen=True, slots=True)
class RefreshReport:
    indexed: int = 0  # files (re)indexed
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0  # unreadable files


def default_index_path(folder: str | os.PathLike[str]) -> Path:
    """Where the index of `folder` lives: the app's data folder, one file per folder."""
    key = hashlib.sha256(os.fsencode(Path(folder).expanduser().resolve())).hexdigest()[:16]
    return Path(platformdirs.user_data_dir("emodesk")) / "knowledge" / f"{key}.sqlite3"


def split_passages(text: str, markdown: bool = True) -> list[tuple[int, str, str]]:
    """(heading level, heading, text) for each passage of a file: sections by `#`
    headings (Markdown), paragraphs joined up to MAX_PASSAGE_CHARS, longer paragraphs
    cut at sentence (or word) boundaries. Level 0: before the first heading."""
    sections: list[tuple[int, str, list[str]]] = [(0, "", [])]
    fence = False
    for line in text.splitlines():
        if markdown and line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        match = _HEADING.match(line) if markdown and not fence else None
        if match:
            sections.append((len(match.group(1)), match.group(2).strip(), []))
        else:
            sections[-1][2].append(line)
    passages: list[tuple[int, str, str]] = []
    for level, heading, lines in sections:
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", "\n".join(lines))]
        chunk = ""
        for paragraph in (p for p in paragraphs if p):
            for piece in _cut(paragraph):
                if chunk and len(chunk) + 1 + len(piece) > MAX_PASSAGE_CHARS:
                    passages.append((level, heading, chunk))
                    chunk = piece
                else:
                    chunk = f"{chunk}\n{piece}" if chunk else piece
        if chunk or heading:  # a heading alone is a passage too: it can be found
            passages.append((level, heading, chunk or heading))
    return passages


def _cut(paragraph: str) -> Iterator[str]:
    """A paragraph in pieces of at most MAX_PASSAGE_CHARS."""
    if len(paragraph) <= MAX_PASSAGE_CHARS:
        yield paragraph
        return
    piece = ""
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > MAX_PASSAGE_CHARS:  # no sentence ends: cut between words
            cut = sentence.rfind(" ", 0, MAX_PASSAGE_CHARS)
            cut = cut if cut > 0 else MAX_PASSAGE_CHARS
            if piece:
                yield piece
                piece = ""
            yield sentence[:cut].strip()
            sentence = sentence[cut:].strip()
        if piece and len(piece) + 1 + len(sentence) > MAX_PASSAGE_CHARS:
            yield piece
            piece = sentence
        else:
            piece = f"{piece} {sentence}" if piece else sentence
    if piece:
        yield piece


def query_words(query: str) -> list[str]:
    """The words of a query, once each, at most MAX_QUERY_TERMS."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:MAX_QUERY_TERMS]


def match_expression(query: str | list[str], joiner: str = " OR ") -> str:
    """The FTS5 MATCH expression for a query in plain words: each word quoted (so
    nothing in it is FTS5 syntax), any of them may match (or, with joiner " ", all);
    "" when it has no words."""
    words = query_words(query) if isinstance(query, str) else query
    return joiner.join('"' + w.replace('"', '""') + '"' for w in words)


class KnowledgeIndex:
    """The index of `folder`, kept in `db_path` (default: `default_index_path`). The
    first `refresh` (or search) indexes the whole folder."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        db_path: str | os.PathLike[str] | None = None,
        *,
        recheck_s: float = DEFAULT_RECHECK_S,
    ) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise KnowledgeError(f"{self.folder} is not a folder")
        self.db_path = Path(db_path) if db_path is not None else default_index_path(folder)
        resolved = self.folder.resolve()
        if self.db_path.resolve().is_relative_to(resolved):
            raise KnowledgeError(f"the index of {self.folder} cannot be kept inside it")
        self.recheck_s = recheck_s
        self._checked_at: float | None = None
        self._built = False  # a whole refresh has finished
        self._lock = threading.Lock()  # the reading connection
        self._refresh_lock = threading.Lock()  # one refresh at a time, on its connection
        self._rechecking: threading.Thread | None = None
        self._writer = self._open()
        # Searches read on their own connection: in WAL they see the last commit and
        # never wait for a refresh that is still indexing.
        self._conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)

    # -- opening -----------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:  # a damaged cache: start it again
            log.warning("the knowledge index %s was unusable (%s); rebuilding", self.db_path, exc)
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.db_path}{suffix}")
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        try:
            with contextlib.suppress(OSError):
                os.chmod(self.db_path, 0o600)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            # A cache: a commit need not reach the disk at once (WAL keeps it whole).
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            folder = str(self.folder.resolve())
            if version not in (0, INDEX_VERSION) or self._meta(conn, "folder") not in (
                None,
                folder,
            ):
                for table in ("passages", "files", "meta"):
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {INDEX_VERSION}")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('folder', ?)", (folder,))
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> str | None:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # no such table: a new index
            return None
        return None if row is None else str(row[0])

    def close(self) -> None:
        rechecking = self._rechecking
        if rechecking is not None:
            rechecking.join()
        with self._refresh_lock:
            self._writer.close()
        with self._lock:
            self._conn.close()

    def __enter__(self) -> KnowledgeIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- keeping up with the folder ----------------------------------------------------

    def _scan(self) -> dict[str, tuple[int, int]]:
        """name -> (mtime_ns, size) of every indexable file under the folder (hidden
        files and folders skipped, links to folders not followed)."""
        found: dict[str, tuple[int, int]] = {}
        try:
            top = os.scandir(self.folder)
        except OSError as exc:
            raise KnowledgeError(f"cannot read {self.folder}: {exc.strerror or exc}") from exc
        stack = [("", top)]
        while stack:
            prefix, entries = stack.pop()
            with entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append((f"{prefix}{entry.name}/", os.scandir(entry.path)))
                        elif (
                            os.path.splitext(entry.name)[1].lower() in SUFFIXES and entry.is_file()
                        ):
                            st = entry.stat()
                            found[prefix + entry.name] = (st.st_mtime_ns, st.st_size)
                    except OSError:
                        continue  # gone or unreadable since the listing
        return found

    def refresh(self) -> RefreshReport:
        """Bring the index up to date with the folder now."""
        with self._refresh_lock:
            self._checked_at = time.monotonic()
            report = self._refresh(self._scan())
            self._built = True
        if report.indexed or report.removed:
            log.info(
                "knowledge index of %s: %d files indexed, %d removed",
                self.folder,
                report.indexed,
                report.removed,
            )
        return report

    def _refresh(self, seen: dict[str, tuple[int, int]]) -> RefreshReport:
        conn = self._writer
        known = {
            str(name): (int(m), int(s))
            for name, m, s in conn.execute("SELECT name, mtime_ns, size FROM files")
        }
        changed = [name for name, stamp in seen.items() if known.get(name) != stamp]
        removed = [name for name in known if name not in seen]
        if not changed and not removed:
            return RefreshReport(unchanged=len(seen))
        skipped = 0
        conn.execute("BEGIN")
        try:
            for name in removed:
                conn.execute("DELETE FROM passages WHERE file = ?", (name,))
                conn.execute("DELETE FROM files WHERE name = ?", (name,))
            for name in changed:
                conn.execute("DELETE FROM passages WHERE file = ?", (name,))
                conn.execute("DELETE FROM files WHERE name = ?", (name,))
                text = self._read(name)
                if text is None:
                    skipped += 1
                    continue
                markdown = os.path.splitext(name)[1].lower() in MARKDOWN_SUFFIXES
                conn.executemany(
                    "INSERT INTO passages (file, ordinal, level, heading, text)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        (name, i, level, heading, body)
                        for i, (level, heading, body) in enumerate(split_passages(text, markdown))
                    ),
                )
                mtime_ns, size = seen[name]
                conn.execute("INSERT INTO files VALUES (?, ?, ?)", (name, mtime_ns, size))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return RefreshReport(
            indexed=len(changed) - skipped,
            removed=len(removed),
            unchanged=len(seen) - len(changed),
            skipped=skipped,
        )

    def _read(self, name: str) -> str | None:
        try:
            with open(self.folder / name, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES)
        except OSError as exc:
            log.warning("cannot index %s: %s", name, exc.strerror or exc)
            return None
        return data.decode("utf-8", errors="replace").lstrip("\ufeff")

    def refresh_if_due(self) -> None:
        """Before a search: the first time (or with `recheck_s` 0), `refresh` now; else,
        if the folder was last looked at `recheck_s` ago or more, look again in a
        background thread (a stat of every file costs more than the search itself)."""
        if not self._refresh_now():
            self._recheck_if_due()

    def _refresh_now(self) -> bool:
        """`refresh` if a search must not go on without it; True if it did."""
        if self._checked_at is None or not self._built or self.recheck_s <= 0:
            self.refresh()  # (after the first indexing, if it is under way)
            return True
        return False

    def _recheck_if_due(self) -> None:
        checked = self._checked_at
        if checked is None or time.monotonic() - checked < self.recheck_s:
            return
        if not self._refresh_lock.locked():
            self.refresh_in_background()

    def refresh_in_background(self) -> None:
        """`refresh` in a thread of its own (the first indexing of a folder chosen while
        the app runs); searches meanwhile wait for a first indexing, not for a later one."""
        self._checked_at = time.monotonic()
        thread = threading.Thread(target=self._recheck, name="emodesk-knowledge", daemon=True)
        self._rechecking = thread
        thread.start()

    def _recheck(self) -> None:
        try:
            self.refresh()
        except Exception:  # the folder went away, a file cannot be read: said, not raised
            log.warning("could not recheck the knowledge folder %s", self.folder, exc_info=True)

    # -- asking ------------------------------------------------------------------------

    def search(self, query: str, k: int = 3) -> list[Passage]:
        """The `k` passages that best match the words of `query` (BM25), best first.
        A due recheck of the folder starts once the answer is ready, so the search does
        not share the processor with it."""
        refreshed = self._refresh_now()
        try:
            return self._search(query, k)
        finally:
            if not refreshed:
                self._recheck_if_due()

    def _search(self, query: str, k: int) -> list[Passage]:
        words = query_words(query)
        if not words or k <= 0:
            return []
        with self._lock:
            expression, common_only = self._expression(words)
            if not expression:
                return []
            bound = 2**63 - 1
            if common_only:  # ranked among the first RANKED_AT_MOST matches (index order)
                last = self._conn.execute(
                    "SELECT rowid FROM passages WHERE passages MATCH ? LIMIT 1 OFFSET ?",
                    (expression, RANKED_AT_MOST - 1),
                ).fetchone()
                bound = last[0] if last is not None else bound
            rows = self._conn.execute(
                f"SELECT file, heading, text FROM passages WHERE passages MATCH ?"
                f" AND rowid <= ? ORDER BY {_BM25} LIMIT ?",
                (expression, bound, k),
            ).fetchall()
        return [Passage(file=str(f), text=str(t), heading=str(h)) for f, h, t in rows]

    def _expression(self, words: list[str]) -> tuple[str, bool]:
        """(the MATCH expression, whether the query is of common words only): the
        query's telling words, rarest first, while the passages they are in number
        about RANKED_AT_MOST (at least one word); common words only: all of them."""
        # How many passages hold each word (counted up to one past common), in one go.
        count = "(SELECT count(*) FROM (SELECT 1 FROM passages WHERE passages MATCH ? LIMIT ?))"
        found = self._conn.execute(
            "SELECT " + ", ".join([count] * len(words)),
            [arg for word in words for arg in (match_expression([word]), COMMON_PASSAGES + 1)],
        ).fetchone()
        counted = [(int(n), word) for n, word in zip(found, words, strict=True) if n]
        rare = sorted(c for c in counted if c[0] <= COMMON_PASSAGES)
        if not rare:
            return match_expression([word for _, word in counted], " "), True
        chosen: list[str] = []
        total = 0
        for found, word in rare:
            if chosen and total + found > RANKED_AT_MOST:
                break
            chosen.append(word)
            total += found
        return match_expression(chosen), False

    def files(self) -> list[str]:
        self.refresh_if_due()
        with self._lock:
            return [str(r[0]) for r in self._conn.execute("SELECT name FROM files ORDER BY name")]

    def topics(self) -> list[Topic]:
        """A course's topics in order: its Markdown files by name (the title is the
        first heading, else the file name); a course of one Markdown file: its
        top-level sections."""
        self.refresh_if_due()
        with self._lock:
            rows = self._conn.execute(
                "SELECT file, CAST(ordinal AS INTEGER) AS o, level, heading, text"
                " FROM passages ORDER BY file, o"
            ).fetchall()
        by_file: dict[str, list[tuple[int, str, str]]] = {}
        for file, _, level, heading, text in rows:
            if os.path.splitext(str(file))[1].lower() in MARKDOWN_SUFFIXES:
                by_file.setdefault(str(file), []).append((int(level), str(heading), str(text)))
        names = sorted(by_file, key=_natural)
        if len(names) == 1:
            (name,) = names
            top = min((level for level, _, _ in by_file[name] if level > 0), default=0)
            sections: list[Topic] = []
            previous: tuple[int, str] | None = None
            for level, heading, text in by_file[name]:
                if top and level == top and (level, heading) != previous:
                    sections.append(Topic(heading, name, text))
                previous = (level, heading)
            if len(sections) > 1:
                return sections
        topics = []
        for name in names:
            passages = by_file[name]
            title = next((h for level, h, _ in passages if level > 0 and h), "")
            opening = next((t for _, h, t in passages if t and t != h), passages[0][2])
            topics.append(Topic(title or _title_of(name), name, opening))
        return topics


def _natural(name: str) -> list[object]:
    """ "2-b.md" before "10-a.md"."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _title_of(name: str) -> str:
    stem = os.path.splitext(os.path.basename(name))[0]
    return re.sub(r"^\d+[\s._-]*", "", stem).replace("_", " ").replace("-", " ").strip() or stem
