"""The public surface of the two contract files, as plain data pinned per contract version.

``surface(module)`` lists every public class defined in the module (its fields, methods and
enum members, with their annotations and whether they have a default) and every public function
with its signature. tests/test_contract_version.py compares it with the file pinned for the
module's ``CONTRACT_VERSION`` in tests/golden/contract/. After a deliberate change of the contract
(a new version in both contract files and its changelog entry in docs/driver-guide.md), pin it:

    .venv/bin/python tests/contract_surface.py --write
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import importlib
import inspect
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden" / "contract"
MODULES = {"drivers": "edge_agent.drivers.contract", "plugins": "edge_agent.plugins.contract"}
_MISSING = (dataclasses.MISSING, inspect.Parameter.empty)


def _signature(fn: Any) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def _own_classes(cls: type, module: str) -> list[type]:
    """The class and its bases defined in the same contract module, base first."""
    return [k for k in reversed(cls.__mro__) if k.__module__ == module]


def _members(cls: type, module: str) -> dict[str, str]:
    """Annotated attributes and public methods of the class (and its bases in the module)."""
    out: dict[str, str] = {}
    defaults = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    for klass in _own_classes(cls, module):
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            if name.startswith("_"):
                continue
            annotation = getattr(annotation, "__forward_arg__", annotation)  # TypedDict keeps ForwardRefs
            field = defaults.get(name)
            has_default = (
                field is not None and (field.default not in _MISSING or field.default_factory not in _MISSING)
            ) or (field is None and name in vars(klass))
            out[name] = f"{annotation}{' = ...' if has_default else ''}"
        for name, value in vars(klass).items():
            if not name.startswith("_") and (
                inspect.isfunction(value) or isinstance(value, classmethod | staticmethod)
            ):
                out[name] = f"def{_signature(getattr(cls, name))}"
    if getattr(cls, "__struct_fields__", None) is not None:  # msgspec.Struct
        for name in cls.__struct_fields__:
            out.setdefault(name, "field")
    return out


def _class(cls: type, module: str) -> dict[str, Any]:
    if issubclass(cls, enum.Enum):
        return {"kind": "enum", "members": {m.name: str(m.value) for m in cls}}
    kind = (
        "dataclass"
        if dataclasses.is_dataclass(cls)
        else "protocol"
        if getattr(cls, "_is_protocol", False)
        else "typeddict"
        if hasattr(cls, "__required_keys__")
        else "class"
    )
    bases = [b.__name__ for b in cls.__bases__ if b is not object]
    return {"kind": kind, "bases": bases, "members": _members(cls, module)}


def _constants(source: str) -> list[str]:
    """Public names the module assigns at top level (``HEX``, ``READING_TYPES``, type aliases)."""
    names = []
    for node in ast.parse(source).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        names += [t.id for t in targets if isinstance(t, ast.Name) and not t.id.startswith("_")]
    return sorted(set(names))


def surface(module: ModuleType, source: str | None = None) -> dict[str, Any]:
    """Every public class, function and constant the contract module defines (re-exports are the other module's)."""
    text = inspect.getsource(module) if source is None else source
    out: dict[str, Any] = {"version": module.CONTRACT_VERSION, "classes": {}, "functions": {}}
    out["constants"] = [n for n in _constants(text) if not isinstance(vars(module).get(n), type)]
    out["exports"] = sorted(getattr(module, "__all__", []))  # re-exports are promised too (plugins.contract)
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if isinstance(obj, type):
            out["classes"][name] = _class(obj, module.__name__)
        elif inspect.isfunction(obj):
            out["functions"][name] = f"def{_signature(obj)}"
    return out


def golden_path(kind: str, version: str) -> Path:
    return GOLDEN / f"{kind}-{version}.json"


def write() -> None:
    """Pin the current surface of both contracts under their current versions."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for kind, name in MODULES.items():
        data = surface(importlib.import_module(name))
        path = golden_path(kind, data["version"])
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"pinned {name} {data['version']} -> {path.relative_to(GOLDEN.parent.parent.parent)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    write()
