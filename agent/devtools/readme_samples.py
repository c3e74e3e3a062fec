"""The sample configs of the driver and plugin READMEs: each README shows one, either its own or the
example snippet it names (``<!-- sample-config: examples/snippets/x.toml -->``), which this module
copies into it (``make readmes``) so that the text a reader copies is the file the tests check."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = re.compile(r"<!-- sample-config(?:: (?P<file>\S+))? -->\n```toml\n(?P<toml>.*?)```", re.S)


def readmes(root: Path = ROOT) -> list[Path]:
    """The README.md of every driver and plugin package."""
    return sorted(p for kind in ("drivers", "plugins") for p in (root / kind).glob("*/README.md"))


def refreshed(text: str, root: Path = ROOT) -> str:
    """A README's text with every snippet-backed sample replaced by the snippet file's current text."""

    def copy(m: re.Match[str]) -> str:
        if not m["file"]:
            return m[0]
        return f"<!-- sample-config: {m['file']} -->\n```toml\n{(root / m['file']).read_text()}```"

    return SAMPLE.sub(copy, text)


def main() -> int:
    """Rewrite the READMEs whose sample is stale; print which."""
    for path in readmes():
        text = path.read_text()
        new = refreshed(text)
        if new != text:
            path.write_text(new)
            print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
