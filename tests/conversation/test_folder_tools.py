"""The tools a knowledge and a course folder make possible, as the composition root
builds them: each folder indexed (now, or in the background), its tools by name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from emodesk.conversation.tools.folders import (
    KnowledgeError,
    build_folder_tools,
    open_folder_tools,
)
from emodesk.conversation.tools.registry import ToolRegistry
from emodesk.core.tools import NEXT_TOPIC, SEARCH_COURSE_MATERIAL, SEARCH_KNOWLEDGE_BASE


def folder(root: Path, name: str, text: str) -> Path:
    root.mkdir(exist_ok=True)
    (root / name).write_text(text, encoding="utf-8")
    return root


def test_each_folder_gives_its_profiles_tools(tmp_path: Path) -> None:
    kb = folder(tmp_path / "kb", "a.md", "# Refunds\n\nFourteen days.\n")
    course = folder(tmp_path / "course", "1.md", "# Cells\n\nSmall.\n")
    built = asyncio.run(open_folder_tools(kb, course, index_dir=tmp_path / "data"))
    try:
        assert set(built.tools) == {SEARCH_KNOWLEDGE_BASE, SEARCH_COURSE_MATERIAL, NEXT_TOPIC}
        assert built.files == {str(kb): 1, str(course): 1}
        registry = ToolRegistry(built.tools.values())
        answer = asyncio.run(registry.dispatch(SEARCH_KNOWLEDGE_BASE, {"query": "refunds"}))
        assert answer == {"passages": [{"file": "a.md", "text": "Fourteen days."}]}
        topic = asyncio.run(registry.dispatch(NEXT_TOPIC, {}))
        assert topic["title"] == "Cells" and topic["number"] == 1
    finally:
        built.close()
    assert sorted(p.name for p in kb.iterdir()) == ["a.md"]  # the index is elsewhere


def test_no_folder_no_tools_and_a_bad_one_is_named(tmp_path: Path) -> None:
    assert build_folder_tools(None, "", index_dir=tmp_path).tools == {}
    with pytest.raises(KnowledgeError, match="missing is not a folder"):
        build_folder_tools(tmp_path / "missing", None, index_dir=tmp_path)


def test_indexing_in_the_background_answers_once_it_is_done(tmp_path: Path) -> None:
    kb = folder(tmp_path / "kb", "a.md", "# Refunds\n\nFourteen days.\n")
    built = build_folder_tools(kb, None, index_dir=tmp_path / "data", index_now=False)
    try:
        registry = ToolRegistry(built.tools.values())
        answer = asyncio.run(registry.dispatch(SEARCH_KNOWLEDGE_BASE, {"query": "refund"}))
        assert answer["passages"][0]["file"] == "a.md"
    finally:
        built.close()
