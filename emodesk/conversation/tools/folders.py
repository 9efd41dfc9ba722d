"""The tools the user's folders make possible, built by the composition root (the
desktop app, `emodesk converse`): a knowledge folder gives the support profile its
`search_knowledge_base`, a course folder gives the tutor `search_course_material` and
`next_topic`. The controller takes `tools` (name -> Tool) and declares those its
profile names. Each folder's index is opened and brought up to date here, once, in a
worker thread; `close()` when the controller is done."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from emodesk.conversation.tools.knowledge import knowledge_tools
from emodesk.conversation.tools.registry import Tool
from emodesk.conversation.tools.tutor import course_tools
from emodesk.store.knowledge import KnowledgeError, KnowledgeIndex, default_index_path

__all__ = ["FolderTools", "KnowledgeError", "open_folder_tools"]


@dataclass
class FolderTools:
    tools: dict[str, Tool] = field(default_factory=dict)
    indexes: list[KnowledgeIndex] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # folder -> files indexed

    def close(self) -> None:
        for index in self.indexes:
            index.close()
        self.indexes.clear()


def _open(folder: str, index_dir: Path | None, index_now: bool) -> KnowledgeIndex:
    db = None if index_dir is None else index_dir / default_index_path(folder).name
    index = KnowledgeIndex(folder, db)
    try:
        if index_now:
            index.refresh()
        else:
            index.refresh_in_background()
    except BaseException:
        index.close()
        raise
    return index


def build_folder_tools(
    knowledge_dir: str | os.PathLike[str] | None,
    course_dir: str | os.PathLike[str] | None,
    *,
    index_dir: Path | None = None,
    index_now: bool = True,
) -> FolderTools:
    """Index the folders given (blocking: call it in a worker thread), or with
    `index_now` False start indexing them in the background and return at once (the
    first search waits for it). KnowledgeError names a folder that cannot be used.
    `index_dir`: where the indexes live (default: the app's data folder)."""
    built = FolderTools()
    try:
        for folder, make in ((knowledge_dir, knowledge_tools), (course_dir, course_tools)):
            if folder is None or not os.fspath(folder).strip():
                continue
            index = _open(os.fspath(folder), index_dir, index_now)
            built.indexes.append(index)
            if index_now:
                built.files[os.fspath(folder)] = len(index.files())
            built.tools.update(make(index))
    except BaseException:
        built.close()
        raise
    return built


async def open_folder_tools(
    knowledge_dir: str | os.PathLike[str] | None,
    course_dir: str | os.PathLike[str] | None,
    *,
    index_dir: Path | None = None,
) -> FolderTools:
    """`build_folder_tools` off the loop."""
    return await asyncio.to_thread(
        build_folder_tools, knowledge_dir, course_dir, index_dir=index_dir
    )
