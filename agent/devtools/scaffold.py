"""``edge-agent new driver|plugin NAME``: write a third-party package that works as generated.

The package has a pyproject.toml with its entry point, the code (a driver with a simulated
backend on the chosen bus, or a plugin), tests that run the conformance kit and a known answer,
and a README that says how to test, install and deploy it. Templates live in
``agent/devtools/templates/`` as plain files with ``{{name}}``-style placeholders.
"""

from __future__ import annotations

import argparse
import re
from importlib import resources
from pathlib import Path

BUSES = ("i2c", "spi", "serial", "none")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")


def names(name: str) -> dict[str, str]:
    """Every spelling of NAME the templates use."""
    return {
        "name": name,  # entry point and SPEC.name: "sht3x"
        "module": f"edge_{name}",  # import package: edge_sht3x
        "dist": f"edge-{name.replace('_', '-')}",  # distribution: edge-sht3x
        "Class": "".join(part.capitalize() for part in name.split("_")),  # Sht3x
    }


def render(text: str, values: dict[str, str]) -> str:
    """Replace ``{{key}}`` placeholders; an unknown key is a bug in a template."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)


def _templates(kind: str, bus: str) -> dict[str, str]:
    """Relative output path (with placeholders) -> template text, for one kind of package."""
    root = resources.files("edge_agent.agent.devtools") / "templates"
    out: dict[str, str] = {}
    for sub in ("common", kind, f"driver-{bus}" if kind == "driver" else ""):
        if not sub:
            continue
        base = root / sub
        for path in _walk(base):
            rel = str(path).split(f"/templates/{sub}/", 1)[1].removesuffix(".tmpl")
            out[rel] = path.read_text()
    return out


def _walk(node: resources.abc.Traversable) -> list[resources.abc.Traversable]:
    files = []
    for child in node.iterdir():
        if child.is_dir():
            files += _walk(child)
        elif child.name.endswith(".tmpl"):
            files.append(child)
    return files


def write_package(kind: str, name: str, directory: Path, *, bus: str = "none") -> Path:
    """Write the package for ``kind`` ("driver"/"plugin") below ``directory``; return its folder."""
    if not _NAME_RE.match(name):
        raise ValueError(f"name {name!r}: use 2-31 lower-case letters, digits and '_', starting with a letter")
    if bus not in BUSES:
        raise ValueError(f"bus {bus!r}: one of {', '.join(BUSES)}")
    values = {**names(name), "kind": kind, "bus": bus}
    target = directory / values["dist"]
    if target.exists():
        raise FileExistsError(f"{target} exists: choose another name or directory")
    for rel, text in sorted(_templates(kind, bus).items()):
        path = target / render(rel, values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(text, values))
    return target


def cmd_new(args: argparse.Namespace) -> int:
    """The ``edge-agent new`` command."""
    try:
        target = write_package(args.kind, args.name, Path(args.dir), bus=args.bus)
    except (ValueError, FileExistsError) as exc:
        print(f"edge-agent new: {exc}")
        return 1
    print(f"wrote {target}")
    print(f"next:  cd {target} && pip install -e '.[test]' && pytest     (see README.md)")
    return 0
