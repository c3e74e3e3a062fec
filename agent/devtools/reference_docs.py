"""Specs as data and as documents: ``edge-agent drivers|plugins --json`` and docs/reference/.

Both are made from the specs alone (options schema, declared values, contract version), so the
reference cannot drift from the code: ``make reference`` rewrites docs/reference/ and a test
fails when the committed files differ from what the built-in specs say.

    python -m edge_agent.agent.devtools.reference_docs [--check] [DIR]
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from edge_agent.agent.config.registry import Origin, Registry, load_registry
from edge_agent.drivers.contract import Capability, DType, ValueSpec, device_groups, driver_features
from edge_agent.plugins.contract import PluginSpec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference"
# What a plugin's declaration is computed from in the reference: one stand-in per driver value.
PLACEHOLDERS = {
    Capability.WAVEFORM: ValueSpec("<axis>", DType.FLOAT32, "g", "each axis of the driver"),
    Capability.TEMPERATURE: ValueSpec("<channel>", DType.FLOAT32, "degC", "each channel of the driver"),
}
ANY_VALUE = ValueSpec("<value>", DType.FLOAT32, "", "each value the driver declares, as it declares it")


def defaults(options: type[msgspec.Struct]) -> msgspec.Struct | None:
    """The options with every default, or None when some option is required."""
    try:
        return msgspec.convert({}, options)
    except msgspec.ValidationError:
        return None


def placeholder(spec: PluginSpec[Any, Any]) -> list[ValueSpec]:
    if spec.requires is None:
        return []
    return [PLACEHOLDERS.get(spec.requires, ANY_VALUE)]


def example_options(spec: Any) -> msgspec.Struct | None:
    """The spec's ``example`` options, else its defaults; None when neither is valid."""
    if spec.example is not None:
        try:
            return msgspec.convert(dict(spec.example), spec.options)
        except msgspec.ValidationError:
            return None
    return defaults(spec.options)


def example_values(kind: str, spec: Any) -> list[ValueSpec] | None:
    """Declared values for the example options (plugins: on a stand-in driver); None if unknown."""
    if spec.values is None:
        return None
    opts = example_options(spec)
    if opts is None:
        return None
    try:
        return list(spec.values(opts) if kind == "driver" else spec.values(opts, placeholder(spec)))
    except Exception:  # a declaration that needs real options: shown as "depends on the options"
        return None


def access(spec: Any) -> list[str] | None:
    """The Unix groups a driver needs with its default options (None: they depend on options)."""
    opts = example_options(spec)
    if opts is None and callable(spec.device_access):
        return None
    try:
        return sorted(device_groups(spec, opts))
    except Exception:
        return None


def value_dict(v: ValueSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"key": v.key, "dtype": str(v.dtype), "unit": v.unit, "description": v.description}
    if v.writable:
        d["writable"] = True
    if v.length is not None:
        d["length"] = v.length
    return d


def schema(options: type[msgspec.Struct]) -> Any:
    """JSON Schema of the options (msgspec's)."""
    try:
        return msgspec.json.schema(options)
    except Exception as exc:  # a type JSON Schema cannot express: say so, list the rest
        return {"error": f"{type(exc).__name__}: {exc}"}


def spec_dict(kind: str, name: str, spec: Any, origin: Origin | None) -> dict[str, Any]:
    """One spec as plain data (``--json``)."""
    values = example_values(kind, spec)
    d: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "description": spec.description,
        "contract_version": spec.contract_version,
        "origin": {"dist": origin.dist, "version": origin.version, "builtin": origin.builtin} if origin else None,
    }
    if kind == "driver":
        d["provides"] = sorted(str(c) for c in spec.provides)
        d["features"] = list(driver_features(spec))  # optional features (drivers.contract.DRIVER_FEATURES)
        d["device_access"] = access(spec)
    else:
        d["requires"] = None if spec.requires is None else str(spec.requires)
    d["options"] = schema(spec.options)
    d["values"] = None if values is None else [value_dict(v) for v in values]
    d["values_declared"] = spec.values is not None
    return d


def listing(reg: Registry, kind: str) -> list[dict[str, Any]]:
    """Every loadable spec of a kind, plus broken and shadowed entries (with the reason)."""
    specs = reg.plugins if kind == "plugin" else reg.drivers
    out = [spec_dict(kind, name, specs[name], reg.origins.get((kind, name))) for name in sorted(specs)]
    for (k, name), why in sorted(reg.broken.items()):
        if k == kind:
            o = reg.origins.get((kind, name))
            origin = None if o is None else {"dist": o.dist, "version": o.version, "builtin": o.builtin}
            out.append({"kind": kind, "name": name, "broken": why, "origin": origin})
    for (k, name), shadowed in sorted(reg.shadowed.items()):
        if k == kind:
            out += [{"kind": kind, "name": name, "shadowed": True, "origin": vars(o)} for o in shadowed]
    return out


# --- Markdown ------------------------------------------------------------------------------


def _num(value: Any, hexa: bool) -> str:
    if hexa and isinstance(value, int) and not isinstance(value, bool):
        return f"0x{value:02X}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounds(t: Any, hexa: bool) -> str:
    lo = f">= {_num(t.ge, hexa)}" if t.ge is not None else (f"> {_num(t.gt, hexa)}" if t.gt is not None else "")
    hi = f"<= {_num(t.le, hexa)}" if t.le is not None else (f"< {_num(t.lt, hexa)}" if t.lt is not None else "")
    if t.ge is not None and t.le is not None:
        return f" {_num(t.ge, hexa)}..{_num(t.le, hexa)}"
    return "".join(f" {b}" for b in (lo, hi) if b)


def type_text(t: Any, nested: list[type], hexa: bool = False) -> str:
    """A msgspec.inspect type as the config writer reads it (``int 1..1000``, ``"tcp" | "rtu"``)."""
    mi = msgspec.inspect
    if isinstance(t, mi.Metadata):
        return type_text(t.type, nested, hexa or (t.extra or {}).get("format") == "hex")
    if isinstance(t, mi.IntType):
        return "int" + _bounds(t, hexa)
    if isinstance(t, mi.FloatType):
        return "float" + _bounds(t, hexa)
    if isinstance(t, mi.StrType):
        pattern = (t.pattern or "").replace("|", "\\|")  # a pipe would split the Markdown table cell
        return "str" + (f" matching `{pattern}`" if pattern else "")
    if isinstance(t, mi.BoolType):
        return "bool"
    if isinstance(t, mi.EnumType):
        return " \\| ".join(f'"{m.value}"' if isinstance(m.value, str) else str(m.value) for m in t.cls)
    if isinstance(t, mi.LiteralType):
        return " \\| ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in t.values)
    if isinstance(t, mi.ListType | mi.SetType | mi.VarTupleType):
        return f"list of {type_text(t.item_type, nested)}"
    if isinstance(t, mi.TupleType):
        return "[" + ", ".join(type_text(i, nested) for i in t.item_types) + "]"
    if isinstance(t, mi.UnionType):
        others = [type_text(i, nested, hexa) for i in t.types if not isinstance(i, mi.NoneType)]
        return " or ".join(others) + (" (optional)" if len(others) < len(t.types) else "")
    if isinstance(t, mi.StructType):
        if t.cls not in nested:
            nested.append(t.cls)
        return f"[{t.cls.__name__}](#{t.cls.__name__.lower()})"
    if isinstance(t, mi.DictType):
        return "table"
    return "any"


def default_text(f: Any) -> str:
    if f.required:
        return "**required**"
    if f.default is not msgspec.NODEFAULT:
        v = f.default
    else:
        try:
            v = f.default_factory()
        except Exception:
            return ""
    if isinstance(v, enum.Enum):
        v = v.value
    if isinstance(v, msgspec.Struct):
        return "(table)"
    return "`" + json.dumps(v, default=str).replace("null", "none") + "`"


def options_table(cls: type[msgspec.Struct], nested: list[type]) -> list[str]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    rows = ["| key | type | default |", "|---|---|---|"]
    for f in info.fields:
        rows.append(f"| `{f.encode_name}` | {type_text(f.type, nested)} | {default_text(f)} |")
    return rows if info.fields else ["(no options)"]


def values_table(values: Sequence[ValueSpec] | None, declared: bool) -> list[str]:
    if not declared:
        return ["Not declared."]
    if values is None:
        return ["They depend on the options; `edge-agent check-config` checks every reference to them."]
    if not values:
        return ["None."]
    rows = ["| key | dtype | unit | description |", "|---|---|---|---|"]
    for v in values:
        dtype = "as declared" if v.key.startswith("<") and "." not in v.key else str(v.dtype)
        if v.length is not None:
            dtype = f"list of up to {v.length} {dtype}"
        extra = " (writable)" if v.writable else ""
        rows.append(f"| `{v.key}` | {dtype} | {v.unit} | {v.description}{extra} |")
    return rows


def spec_page(kind: str, name: str, spec: Any) -> str:
    """The Markdown reference of one spec."""
    nested: list[type] = []
    out = [f"# {kind} `{name}`", "", spec.description, ""]
    if kind == "driver":
        provides = ", ".join(f"`{c}`" for c in sorted(spec.provides))
        groups = access(spec)
        needs = "depends on the options" if groups is None else ", ".join(f"`{g}`" for g in groups) or "none"
        features = ", ".join(f"`{f}`" for f in driver_features(spec)) or "none"
        out += [f"Provides: {provides}. Optional features: {features}. Contract {spec.contract_version}.", ""]
        which = "default" if spec.example is None else "example"
        out += [f"Device access (Unix groups of the service, {which} options): {needs}.", ""]
        where, values = f'`[instances.driver]` (with `type = "{name}"`)', example_values(kind, spec)
    else:
        needs = "no driver" if spec.requires is None else f"a driver providing `{spec.requires}`"
        out += [f"Needs {needs}. Contract {spec.contract_version}.", ""]
        where, values = "`[instances.options]`", example_values(kind, spec)
    out += ["## Options", "", f"The keys of {where}:", "", *options_table(spec.options, nested), ""]
    done: list[type] = []
    while len(done) < len(nested):
        cls = nested[len(done)]
        done.append(cls)
        out += [f"### {cls.__name__}", "", *options_table(cls, nested), ""]
    out += ["## Declared values", ""]
    how = (getattr(spec.values, "__doc__", None) or "").strip().split("\n")[0]
    if how and spec.values is not None and getattr(spec.values, "__name__", "") != "<lambda>":
        out += [f"How they are formed: {how}", ""]
    if kind == "plugin" and spec.requires is not None and values is not None:
        stand_in = placeholder(spec)[0].key
        which = "default options" if spec.example is None else f"options `{json.dumps(dict(spec.example))}`"
        out += [f"For the {which}, on a driver whose values are shown as `{stand_in}`:", ""]
    elif values is not None and spec.example is not None:
        shown = json.dumps(dict(spec.example), default=str)
        out += [f"For the example options `{shown}`:", ""]
    elif values is not None:
        out += ["For the default options:", ""]
    out += [*values_table(values, spec.values is not None), ""]
    return "\n".join(out)


def builtin_specs(reg: Registry) -> list[tuple[str, str, Any]]:
    reg.load_all()
    out: list[tuple[str, str, Any]] = []
    for kind, specs in (("driver", reg.drivers), ("plugin", reg.plugins)):
        for name in sorted(specs):
            o = reg.origins.get((kind, name))
            if o is not None and o.builtin:
                out.append((kind, name, specs[name]))
    return out


def render(reg: Registry) -> dict[str, str]:
    """File name -> content of docs/reference/, from the built-in specs."""
    specs = builtin_specs(reg)
    files = {f"{kind}-{name}.md": spec_page(kind, name, spec) for kind, name, spec in specs}
    index = [
        "# Reference: built-in drivers and plugins",
        "",
        "Generated from the specs by `make reference` (`python -m edge_agent.agent.devtools.reference_docs`); do not",
        "edit by hand: a test fails when these files differ from the code. Installed third-party",
        "packages: `edge-agent drivers --json`, `edge-agent plugins --json`.",
        "",
    ]
    for kind in ("driver", "plugin"):
        index += [f"## {kind.capitalize()}s", "", "| name | what |", "|---|---|"]
        index += [f"| [{n}]({k}-{n}.md) | {s.description} |" for k, n, s in specs if k == kind]
        index.append("")
    files["README.md"] = "\n".join(index)
    return files


def stale(directory: Path, files: dict[str, str]) -> list[str]:
    """Files that differ from what the specs say (missing, changed or left over)."""
    present = {p.name for p in directory.glob("*.md")} if directory.is_dir() else set()
    out = [n for n, text in sorted(files.items()) if n not in present or (directory / n).read_text() != text]
    return out + sorted(present - set(files))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m edge_agent.agent.devtools.reference_docs", description=__doc__.split("\n")[0]
    )
    p.add_argument("directory", nargs="?", type=Path, default=DOCS)
    p.add_argument("--check", action="store_true", help="exit 1 when the files are stale; write nothing")
    args = p.parse_args(argv)
    files = render(load_registry())
    changed = stale(args.directory, files)
    if args.check:
        for name in changed:
            print(f"{args.directory / name}: stale (run `make reference`)")
        return 1 if changed else 0
    args.directory.mkdir(parents=True, exist_ok=True)
    for name in changed:
        if name in files:
            (args.directory / name).write_text(files[name])
        else:
            (args.directory / name).unlink()
    print(f"{args.directory}: {len(changed)} file(s) written or removed, {len(files)} in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
