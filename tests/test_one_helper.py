"""One helper per meaning: the helpers that got copied before are defined once, and new code reuses them.

(Five ``flatten`` functions with four return types were found in one review; a sixth came back with
the thermal plugin. The table below names where each one lives.)"""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

ONE_HOME = {
    "flatten": "drivers/dotted_keys.py",
    "numeric_leaves": "drivers/dotted_keys.py",
    "now_ms": "agent/clock.py",
}


def definitions(name: str, root: Path = ROOT) -> list[str]:
    """Every definition of ``name`` (or ``_name``: functions and methods) in the shipped code."""
    found = []
    for folder in ("agent", "drivers", "plugins"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.lstrip("_") == name:
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_each_helper_is_defined_once_where_the_table_says() -> None:
    for name, home in ONE_HOME.items():
        found = definitions(name)
        assert [f.split(":")[0] for f in found] == [home], f"{name}: defined at {found}; reuse the one in {home}"


def test_the_scan_sees_a_copy(tmp_path: Path) -> None:
    (tmp_path / "plugins" / "x").mkdir(parents=True)
    (tmp_path / "plugins" / "x" / "plugin.py").write_text("class P:\n    def _flatten(self, d):\n        return d\n")
    assert definitions("flatten", tmp_path) == ["plugins/x/plugin.py:2"]
