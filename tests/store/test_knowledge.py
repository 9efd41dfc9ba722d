"""The knowledge index: a folder of Markdown and text files in SQLite FTS5, ranked by
BM25, kept up to date with the folder, and never kept inside it."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from emodesk.store.knowledge import (
    COMMON_PASSAGES,
    MAX_PASSAGE_CHARS,
    KnowledgeError,
    KnowledgeIndex,
    default_index_path,
    match_expression,
    split_passages,
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def touch_later(path: Path, text: str) -> None:
    """Rewrite `path` with a modification time surely different from before."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    write(
        folder,
        "refunds.md",
        "# Refunds\n\nA refund is paid within 14 days of the return reaching us.\n\n"
        "## Exceptions\n\nGift cards cannot be refunded.\n",
    )
    write(folder, "shipping.txt", "Parcels ship from Rotterdam. Delivery takes 3 to 5 days.\n")
    write(folder, "guides/router.md", "# Router\n\nRestart the router by holding reset for 10 s.\n")
    write(folder, ".hidden.md", "secret refund notes\n")
    write(folder, "photo.png", "refund refund refund")
    return folder


def index_of(folder: Path, tmp_path: Path) -> KnowledgeIndex:
    return KnowledgeIndex(folder, tmp_path / "data" / "kb.sqlite3", recheck_s=0.0)


def test_the_best_passage_comes_first_with_its_file(kb: Path, tmp_path: Path) -> None:
    with index_of(kb, tmp_path) as index:
        hits = index.search("how long until my refund is paid")
        assert hits[0].file == "refunds.md"
        assert "14 days" in hits[0].text
        assert index.search("router reset")[0].file == "guides/router.md"
        assert index.search("delivery days Rotterdam")[0].file == "shipping.txt"


def test_only_markdown_and_text_files_outside_hidden_ones_are_indexed(
    kb: Path, tmp_path: Path
) -> None:
    with index_of(kb, tmp_path) as index:
        assert index.files() == ["guides/router.md", "refunds.md", "shipping.txt"]


def test_k_bounds_the_answer_and_nothing_matching_is_empty(kb: Path, tmp_path: Path) -> None:
    with index_of(kb, tmp_path) as index:
        assert len(index.search("days", k=1)) == 1
        assert len(index.search("refund days router parcels gift", k=2)) == 2
        assert index.search("xylophone") == []
        assert index.search("") == []


@pytest.mark.parametrize(
    "query",
    [
        '"',
        'refund"',
        "refund*",
        "NOT refund",
        "refund AND OR NOT",
        "(refund",
        "file:refunds",
        "heading: refund",
        "^refund",
        "refund NEAR(gift, 3)",
        "-refund +gift",
        "*",
        ":",
        "' OR 1=1 --",
        "refund; DROP TABLE files",
        "\x00refund",
        "émoji 🙂 refund",
    ],
)
def test_fts5_syntax_in_a_query_never_raises(kb: Path, tmp_path: Path, query: str) -> None:
    with index_of(kb, tmp_path) as index:
        hits = index.search(query)
        assert all(hit.file for hit in hits)
        if "refund" in query.lower():
            assert hits and hits[0].file == "refunds.md"
        assert index.files()  # nothing was dropped


def test_match_expression_quotes_every_word() -> None:
    assert match_expression('say "hi" OR NOT') == '"say" OR "hi" OR "or" OR "not"'
    assert match_expression("?!*") == ""


def test_a_changed_file_is_indexed_again_before_the_next_search(kb: Path, tmp_path: Path) -> None:
    with index_of(kb, tmp_path) as index:
        assert index.search("vouchers") == []
        touch_later(kb / "shipping.txt", "Vouchers can be used for shipping costs.\n")
        hits = index.search("vouchers")
        assert [h.file for h in hits] == ["shipping.txt"]
        assert index.search("Rotterdam") == []  # the old text is gone


def test_added_and_removed_files_are_seen(kb: Path, tmp_path: Path) -> None:
    with index_of(kb, tmp_path) as index:
        index.refresh()
        write(kb, "warranty.md", "# Warranty\n\nTwo years on every device.\n")
        (kb / "guides" / "router.md").unlink()
        report = index.refresh()
        assert (report.indexed, report.removed) == (1, 1)
        assert index.search("warranty")[0].file == "warranty.md"
        assert index.search("router") == []
        assert index.refresh().unchanged == 3


def test_the_index_survives_reopening_and_skips_unchanged_files(kb: Path, tmp_path: Path) -> None:
    with index_of(kb, tmp_path) as index:
        assert index.refresh().indexed == 3
    with index_of(kb, tmp_path) as again:
        report = again.refresh()
        assert (report.indexed, report.unchanged) == (0, 3)
        assert again.search("gift cards")[0].file == "refunds.md"


def test_a_damaged_index_is_rebuilt(kb: Path, tmp_path: Path) -> None:
    db = tmp_path / "data" / "kb.sqlite3"
    db.parent.mkdir()
    db.write_bytes(b"not a database at all" * 100)
    with KnowledgeIndex(kb, db, recheck_s=0.0) as index:
        assert index.search("refund")[0].file == "refunds.md"


def test_the_index_is_private_and_never_inside_the_folder(kb: Path, tmp_path: Path) -> None:
    with index_of(kb, tmp_path) as index:
        index.refresh()
        assert stat.S_IMODE(index.db_path.stat().st_mode) == 0o600
    names = sorted(p.name for p in kb.iterdir())
    assert names == [".hidden.md", "guides", "photo.png", "refunds.md", "shipping.txt"]
    with pytest.raises(KnowledgeError, match="inside"):
        KnowledgeIndex(kb, kb / "index.sqlite3")


def test_the_default_index_lives_in_the_data_folder(
    kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    path = default_index_path(kb)
    assert path.is_relative_to(tmp_path / "xdg" / "emodesk")
    assert default_index_path(kb) == path != default_index_path(tmp_path)


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="not a folder"):
        KnowledgeIndex(tmp_path / "nope", tmp_path / "kb.sqlite3")


def test_passages_are_sections_and_bounded_paragraphs() -> None:
    long = " ".join(f"Sentence number {i} says something." for i in range(200))
    text = f"Intro line.\n\n# One\n\nFirst.\n\nSecond.\n\n## Two\n\n{long}\n\n# Empty\n"
    passages = split_passages(text)
    assert passages[0] == (0, "", "Intro line.")
    assert passages[1] == (1, "One", "First.\nSecond.")
    twos = [p for p in passages if p[1] == "Two"]
    assert len(twos) > 1 and all(len(p[2]) <= MAX_PASSAGE_CHARS for p in twos)
    assert " ".join(p[2] for p in twos) == long
    assert passages[-1] == (1, "Empty", "Empty")
    # Text files have no headings: a "#" line is text.
    assert split_passages("# not a heading\n\nbody", markdown=False)[0][1] == ""


def test_course_topics_are_markdown_files_in_name_order(tmp_path: Path) -> None:
    course = tmp_path / "course"
    write(course, "10-fractions.md", "# Fractions\n\nA fraction is a part of a whole.\n")
    write(course, "2-multiplication.md", "Multiplying is repeated adding.\n")
    write(course, "1-addition.md", "# Adding numbers\n\nAdding puts numbers together.\n")
    write(course, "notes.txt", "not a topic")
    with index_of(course, tmp_path) as index:
        topics = index.topics()
    assert [(t.title, t.file) for t in topics] == [
        ("Adding numbers", "1-addition.md"),
        ("multiplication", "2-multiplication.md"),
        ("Fractions", "10-fractions.md"),
    ]
    assert topics[0].text == "Adding puts numbers together."


def test_a_one_file_course_has_its_sections_as_topics(tmp_path: Path) -> None:
    course = tmp_path / "course"
    write(
        course,
        "course.md",
        "# Welcome\n\nHello.\n\n# Cells\n\nCells are small.\n\n## Parts\n\nNucleus.\n\n"
        "# Genes\n\nGenes carry code.\n",
    )
    with index_of(course, tmp_path) as index:
        topics = index.topics()
    assert [(t.title, t.text) for t in topics] == [
        ("Welcome", "Hello."),
        ("Cells", "Cells are small."),
        ("Genes", "Genes carry code."),
    ]


def test_a_later_recheck_runs_in_the_background_and_the_next_search_sees_it(
    kb: Path, tmp_path: Path
) -> None:
    with KnowledgeIndex(kb, tmp_path / "data" / "kb.sqlite3", recheck_s=0.05) as index:
        assert index.search("vouchers") == []  # the first search indexes at once
        touch_later(kb / "shipping.txt", "Vouchers can be used for shipping costs.\n")
        time.sleep(0.06)
        index.search("vouchers")  # due: starts a recheck, answers from the index as it is
        thread = index._rechecking
        assert thread is not None
        thread.join(5)
        assert [h.file for h in index.search("vouchers")] == ["shipping.txt"]


def test_common_words_give_way_to_telling_ones(tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    for n in range(COMMON_PASSAGES + 5):
        write(folder, f"note-{n:03d}.md", f"# Note {n}\n\nThe device works well, note {n}.\n")
    write(folder, "zebra.md", "# Zebra\n\nThe device has a zebra mode.\n")
    with index_of(folder, tmp_path) as index:
        assert index.search("the device zebra")[0].file == "zebra.md"
        hits = index.search("the device")  # common words only: still an answer
        assert len(hits) == 3 and all("device" in h.text.lower() for h in hits)


def test_a_search_during_the_first_indexing_waits_for_it(kb: Path, tmp_path: Path) -> None:
    with KnowledgeIndex(kb, tmp_path / "data" / "kb.sqlite3") as index:
        index.refresh_in_background()
        assert index.search("gift cards")[0].file == "refunds.md"
