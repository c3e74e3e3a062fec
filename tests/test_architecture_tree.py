"""docs/architecture.md's tree names every folder of the code, so it cannot fall behind a new package."""

from __future__ import annotations

import re
from importlib.metadata import entry_points

from support import ROOT


def tree_block() -> str:
    """The code block under '## The tree'."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    return text.split("## The tree", 1)[1].split("```", 2)[1]


def spec_packages() -> set[str]:
    """drivers/NAME and plugins/NAME of the built-ins: the tree's ``<name>/`` line covers them."""
    found = set()
    for group in ("edge_agent.drivers", "edge_agent.plugins"):
        for ep in entry_points(group=group):
            parts = ep.value.split(":")[0].split(".")
            if parts[0] == "edge_agent":
                found.add(f"{parts[1]}/{parts[2]}")
    return found


def test_every_code_folder_is_in_the_tree() -> None:
    named = set(re.findall(r"^ {2}(\w+)/", tree_block(), re.M))
    folders = {
        f"{top}/{p.name}"
        for top in ("agent", "drivers", "plugins")
        for p in (ROOT / top).iterdir()
        if (p / "__init__.py").is_file()
    }
    missing = sorted(f for f in folders - spec_packages() if f.split("/")[1] not in named)
    assert not missing, f"add them to the tree in docs/architecture.md (one line each): {missing}"
