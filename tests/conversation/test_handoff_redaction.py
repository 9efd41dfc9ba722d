"""The handoff file goes through the history's full redactor (cards, IBANs, addresses,
the user's names), not only the core floor's emails and phones, over the real SDK to the
emulator; the model heard the conversation as it was said."""

from __future__ import annotations

import json
from pathlib import Path

from emodesk.store.redaction import Redactor, names_from_setting
from tests.conversation.test_tools_over_the_wire import typed_turn
from tests.support.wired import wired

CARD, IBAN = "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32"


async def test_handoff_lines_are_masked_by_the_history_redactor(tmp_path: Path) -> None:
    out = tmp_path / "handoff.json"
    async with wired(profile="support", consent=True) as rig:
        rig.store.redactor = Redactor(names_from_setting("Ada Lovelace"))  # type: ignore[attr-defined]
        await typed_turn(rig, f"This is Ada Lovelace, my card {CARD} was charged twice")
        await typed_turn(rig, f"Refund it to {IBAN}, I live at 12 Baker Street")
        await rig.controller.drain()
        assert await rig.controller.export(str(out), "handoff")
        heard = [turn.text for turn in rig.server.all_turns()]
    assert CARD in heard[0] and IBAN in heard[1]  # the model heard it all
    text = out.read_text(encoding="utf-8")
    for secret in (CARD, IBAN, "Lovelace", "Baker Street"):
        assert secret not in text, secret
    lines = [line["text"] for line in json.loads(text)["transcript"]]
    assert lines[0].startswith("This is [name], my card [card]")
    assert lines[2] == "Refund it to [iban], I live at [address]"
