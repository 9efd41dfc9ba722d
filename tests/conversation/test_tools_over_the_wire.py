"""The support and tutor tools end to end: the controller and the real google-genai SDK
over TLS to the emulator, which calls the declared functions when a typed turn cues
them ("search for <query>", "next topic") and cites the files of their answers; the
answers come from a real FTS5 index of a test folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from emodesk.conversation.api import TopicChanged, TurnOutcome
from emodesk.conversation.tools.knowledge import knowledge_tools
from emodesk.conversation.tools.tutor import course_tools
from emodesk.core.tools import NEXT_TOPIC, SEARCH_COURSE_MATERIAL, SEARCH_KNOWLEDGE_BASE
from emodesk.store.knowledge import KnowledgeIndex
from tests.support.wired import Wired, wired

pytestmark = pytest.mark.timeout(30)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    write(folder, "refunds.md", "# Refunds\n\nA refund is paid within 14 days of the return.\n")
    write(folder, "router.md", "# Router\n\nHold the reset button for ten seconds.\n")
    return folder


@pytest.fixture
def kb_index(kb: Path, tmp_path: Path) -> Iterator[KnowledgeIndex]:
    with KnowledgeIndex(kb, tmp_path / "data" / "kb.sqlite3", recheck_s=0.0) as index:
        yield index


@pytest.fixture
def course(tmp_path: Path) -> Iterator[KnowledgeIndex]:
    folder = tmp_path / "course"
    write(folder, "01-cells.md", "# Cells\n\nEvery living thing is made of cells.\n")
    write(folder, "02-dna.md", "# DNA\n\nDNA carries the instructions of a cell.\n")
    write(folder, "03-proteins.md", "# Proteins\n\nProteins do the work in a cell.\n")
    with KnowledgeIndex(folder, tmp_path / "data" / "course.sqlite3", recheck_s=0.0) as index:
        yield index


async def typed_turn(rig: Wired, text: str) -> str:
    """Send `text`, wait for its turn to close answered; the reply's text."""
    number = len(rig.closed()) + 1
    assert await rig.controller.send_text(text)
    await rig.until(lambda: number in rig.closed())
    closed = rig.closed()[number]
    assert closed.outcome is TurnOutcome.COMPLETED, closed.reason
    return str(closed.model_text)


def answers(rig: Wired, name: str) -> list[dict[str, object]]:
    """The emulator's record of what the client answered to each call of `name`."""
    return [
        (response or {}).get("response") or {}
        for turn in rig.server.all_turns()
        for called, _, response in turn.other_calls
        if called == name
    ]


async def test_a_knowledge_search_is_answered_from_the_index_and_cited(
    kb_index: KnowledgeIndex,
) -> None:
    tools = knowledge_tools(kb_index)
    async with wired(profile="support", tools=tools) as rig:
        setup = json.dumps(rig.server.connections[0].setup)
        assert SEARCH_KNOWLEDGE_BASE in setup
        reply = await typed_turn(rig, "When do I get my money? Search for refund days.")
        assert reply.endswith("(from refunds.md).")
        (answer,) = answers(rig, SEARCH_KNOWLEDGE_BASE)
        passages = answer["passages"]
        assert isinstance(passages, list) and passages[0]["file"] == "refunds.md"
        assert "14 days" in passages[0]["text"]


async def test_a_changed_folder_is_searched_as_it_is_now(
    kb: Path, kb_index: KnowledgeIndex
) -> None:
    async with wired(profile="support", tools=knowledge_tools(kb_index)) as rig:
        assert "(from" not in await typed_turn(rig, "Search for warranty")
        write(kb, "warranty.md", "# Warranty\n\nEvery device has a two year warranty.\n")
        reply = await typed_turn(rig, "Search for warranty")
        assert reply.endswith("(from warranty.md).")
        router = kb / "router.md"
        stamp = router.stat().st_mtime_ns + 2_000_000_000
        router.write_text("# Router\n\nThe warranty does not cover routers.\n", encoding="utf-8")
        os.utime(router, ns=(stamp, stamp))
        (kb / "warranty.md").unlink()
        assert (await typed_turn(rig, "Search for warranty")).endswith("(from router.md).")


@pytest.mark.parametrize(
    "query",
    ['refund* AND "gift" (NOT', "refund NEAR(x, 2) ^col: -", '"" OR * :'],
)
async def test_fts5_syntax_in_a_spoken_query_is_plain_words(
    kb_index: KnowledgeIndex, query: str
) -> None:
    async with wired(profile="support", tools=knowledge_tools(kb_index)) as rig:
        reply = await typed_turn(rig, f"Search for {query}")
        (answer,) = answers(rig, SEARCH_KNOWLEDGE_BASE)
        assert "error" not in answer
        if "refund" in query:
            assert reply.endswith("(from refunds.md).")
        else:
            assert answer["passages"] == []


async def test_the_tutor_moves_through_the_topics_and_the_window_hears_of_each(
    course: KnowledgeIndex,
) -> None:
    async with wired(profile="tutor", tools=course_tools(course)) as rig:
        setup = json.dumps(rig.server.connections[0].setup)
        assert NEXT_TOPIC in setup and SEARCH_COURSE_MATERIAL in setup
        assert (await typed_turn(rig, "Next topic please")).endswith("(from 01-cells.md).")
        assert (await typed_turn(rig, "I get it, next topic")).endswith("(from 02-dna.md).")
        reply = await typed_turn(rig, "Search for proteins")
        assert reply.endswith("(from 03-proteins.md).")
        await typed_turn(rig, "next topic")
        await typed_turn(rig, "next topic")  # past the last one
        assert [(e.title, e.file) for e in rig.of(TopicChanged)] == [
            ("Cells", "01-cells.md"),
            ("DNA", "02-dna.md"),
            ("Proteins", "03-proteins.md"),
        ]
        topics = answers(rig, NEXT_TOPIC)
        assert topics[0] == {
            "title": "Cells",
            "file": "01-cells.md",
            "text": "Every living thing is made of cells.",
            "number": 1,
            "of": 3,
        }
        assert topics[-1]["done"] is True


async def test_the_handoff_file_has_the_session_without_personal_data(
    kb_index: KnowledgeIndex, tmp_path: Path
) -> None:
    out = tmp_path / "handoff.json"
    async with wired(profile="support", consent=True, tools=knowledge_tools(kb_index)) as rig:
        await typed_turn(rig, "I am angry, write to jane.doe@example.com. Search for refund")
        await typed_turn(rig, "This is unacceptable, call me on +44 20 7946 0958")
        await typed_turn(rig, "I am furious about the router. Search for router reset")
        await rig.controller.drain()
        assert await rig.controller.export(str(out), "handoff")
    text = out.read_text(encoding="utf-8")
    assert "jane.doe@example.com" not in text and "7946" not in text
    doc = json.loads(text)
    assert doc["format"] == "emodesk-handoff" and doc["session"]["profile"] == "support"
    said = [(line["turn"], line["role"]) for line in doc["transcript"]]
    assert said == [(t, r) for t in (1, 2, 3) for r in ("user", "model")]
    assert "[email]" in doc["transcript"][0]["text"]
    assert "[phone]" in doc["transcript"][2]["text"]
    assert {r["turn"] for r in doc["timeline"]} == {1, 2, 3}
    assert doc["verdicts"]["final"]["escalate"] is True
    assert doc["verdicts"]["final"]["advice"] == "Offer a human agent"
    assert doc["verdicts"]["changes"][-1]["escalate"] is True
    files = [(p["file"], p["turn"]) for p in doc["knowledge"]]
    assert ("refunds.md", 1) in files and ("router.md", 3) in files
    assert all("@" not in p["query"] for p in doc["knowledge"])
