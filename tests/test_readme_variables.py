"""The README names the environment variables the code reads, spelled as the code
spells them (it once said EMODESK_INSECURE where the code read another name)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_variable_the_readme_names_is_read_by_the_code() -> None:
    readme = set(re.findall(r"\bEMODESK_[A-Z_]+[A-Z]\b", (ROOT / "README.md").read_text()))
    code = "\n".join(p.read_text() for p in (ROOT / "emodesk").rglob("*.py"))
    assert readme, "the README names no variable at all"
    missing = sorted(name for name in readme if f'"{name}"' not in code)
    assert not missing, f"the README names variables the code never reads: {missing}"


def test_the_endpoint_variables_the_code_reads_are_in_the_readme() -> None:
    from emodesk.live.credentials import ENV_API_KEY
    from emodesk.live.endpoint import ENV_CA_FILE, ENV_ENDPOINT, ENV_INSECURE

    readme = (ROOT / "README.md").read_text()
    for name in (ENV_ENDPOINT, ENV_CA_FILE, ENV_INSECURE, ENV_API_KEY):
        assert name in readme, name
