"""The contract version has teeth: the public surface of each contract file is pinned to its version.

tests/golden/contract/{drivers,plugins}-VERSION.json hold the surface (classes with their fields,
methods and members, functions, constants) of each released version (tests/contract_surface.py).
Changing the surface without a new version fails here, with what to do; a minor version only
adds to the previous one; every version has its entry in the changelog of docs/driver-guide.md.
"""

from __future__ import annotations

import importlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import contract_surface as cs
import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "driver-guide.md"
HOW = (
    "If you ADDED something (a field with a default, a class, a function, an enum member): that is a new "
    "minor version. Set CONTRACT_VERSION to the next minor in BOTH drivers/contract.py and plugins/contract.py, "
    "add its entry to the changelog in docs/driver-guide.md ('Contract versions'), then pin it with "
    "`.venv/bin/python tests/contract_surface.py --write` and commit tests/golden/contract/. "
    "If you CHANGED or REMOVED something a package may use, that breaks packages written for this major "
    "version: keep it (add beside it instead), or make it a new major version with the same steps."
)


def _diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(added, changed or removed) between two surfaces, as dotted names."""
    added: list[str] = []
    broken: list[str] = []
    for section in ("classes", "functions"):
        before, after = old.get(section, {}), new.get(section, {})
        added += [n for n in after if n not in before]
        broken += [f"{n} (removed)" for n in before if n not in after]
        for name in set(before) & set(after):
            if section == "functions" or before[name].get("kind") != after[name].get("kind"):
                broken += [f"{name}: {before[name]} -> {after[name]}"] if before[name] != after[name] else []
                continue
            was, now = before[name]["members"], after[name]["members"]
            added += [f"{name}.{m}" for m in now if m not in was]
            broken += [f"{name}.{m} (removed)" for m in was if m not in now]
            broken += [f"{name}.{m}: {was[m]!r} -> {now[m]!r}" for m in set(was) & set(now) if was[m] != now[m]]
    for section in ("constants", "exports"):
        added += [n for n in new.get(section, []) if n not in old.get(section, []) and n not in added]
        broken += [f"{n} (removed)" for n in old.get(section, []) if n not in new.get(section, [])]
    return sorted(added), sorted(broken)


def _pinned(kind: str) -> dict[str, dict[str, Any]]:
    """Every pinned version of one contract, by version."""
    return {
        p.stem.split("-", 1)[1]: json.loads(p.read_text())
        for p in sorted(cs.GOLDEN.glob(f"{kind}-*.json"))
        if p.stem.split("-", 1)[0] == kind
    }


def _key(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


@pytest.mark.parametrize("kind", sorted(cs.MODULES))
def test_the_surface_is_the_one_pinned_for_the_version(kind: str) -> None:
    module = importlib.import_module(cs.MODULES[kind])
    version = module.CONTRACT_VERSION
    path = cs.golden_path(kind, version)
    assert path.exists(), f"{cs.MODULES[kind]}: CONTRACT_VERSION is {version} but nothing is pinned for it. {HOW}"
    pinned = json.loads(path.read_text())
    added, broken = _diff(pinned, cs.surface(module))
    assert not (added or broken), (
        f"The public surface of {kind}/contract.py changed, but CONTRACT_VERSION is still {version}.\n"
        f"  added: {', '.join(added) or '-'}\n  changed or removed: {'; '.join(broken) or '-'}\n{HOW}"
    )


def test_both_contracts_carry_the_same_version() -> None:
    versions = {kind: importlib.import_module(name).CONTRACT_VERSION for kind, name in cs.MODULES.items()}
    assert len(set(versions.values())) == 1, f"the two contract files differ: {versions}; they move together"


@pytest.mark.parametrize("kind", sorted(cs.MODULES))
def test_a_minor_version_only_adds_to_the_one_before(kind: str) -> None:
    pinned = _pinned(kind)
    versions = sorted(pinned, key=_key)
    assert len(versions) >= 2  # 1.0 and 1.1 at least
    for old, new in itertools.pairwise(versions):
        if _key(old)[0] != _key(new)[0]:
            continue  # a new major may change anything
        _, broken = _diff(_names_only(pinned[old]), _names_only(pinned[new]))
        assert not broken, f"{kind} contract {new} removes what {old} had: {broken}; a minor version only adds"


def _names_only(surface: dict[str, Any]) -> dict[str, Any]:
    """The surface with names only: a minor version may narrow a type (Any -> a Protocol), not drop a name."""
    classes = {
        n: {"kind": c["kind"], "members": dict.fromkeys(c.get("members", {}), "")}
        for n, c in surface["classes"].items()
    }
    names = {"constants": surface["constants"], "exports": surface.get("exports", [])}
    return {"classes": classes, "functions": dict.fromkeys(surface["functions"], ""), **names}


def test_every_version_has_its_changelog_entry() -> None:
    text = GUIDE.read_text()
    entries = set(re.findall(r"^### Contract (\d+\.\d+)\b", text, flags=re.M))
    versions = set(_pinned("drivers")) | set(_pinned("plugins"))
    assert versions <= entries, f"docs/driver-guide.md has no '### Contract X.Y' entry for {sorted(versions - entries)}"


def test_the_diff_names_what_was_added_and_what_broke() -> None:
    old = {
        "classes": {"A": {"kind": "dataclass", "members": {"x": "int", "y": "str"}}},
        "functions": {},
        "constants": [],
    }
    new = {"classes": {"A": {"kind": "dataclass", "members": {"x": "float", "z": "int = ..."}}}, "functions": {}}
    new["constants"] = ["HEX"]
    assert _diff(old, new) == (["A.z", "HEX"], ["A.x: 'int' -> 'float'", "A.y (removed)"])
