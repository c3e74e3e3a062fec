"""Validate plain data (parsed TOML, JSON, MessagePack) against msgspec structs, collecting
*every* error with its path instead of stopping at the first one."""

from __future__ import annotations

import difflib
import enum
import functools
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

import msgspec


def join(path: str, key: str | int) -> str:
    """Append a key or an index to a dotted config path."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names nearest to a misspelt one (case-insensitive), closest first."""
    by_lower = {c.lower(): c for c in choices}
    return [by_lower[m] for m in difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.6)]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``did you mean "disk_path"? `` for a misspelt name, or nothing when none is close."""
    close = close_matches(word, choices)
    return f"did you mean {' or '.join(describe(c) for c in close)}? " if close else ""


def describe(value: Any) -> str:
    """Show an offending value briefly, the way it looked in the config."""
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f'"{text}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _unwrap(tp: Any) -> tuple[Any, list[msgspec.Meta]]:
    """Strip Annotated and ``| None`` from a type; return it with its Meta constraints."""
    metas: list[msgspec.Meta] = []
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            args = typing.get_args(tp)
            metas += [m for m in args[1:] if isinstance(m, msgspec.Meta)]
            tp = args[0]
            continue
        args = typing.get_args(tp)
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                tp = rest[0]
                continue
        return tp, metas


def _type_at(tp: Any, loc: str) -> Any:
    """The declared type at a msgspec location (``$.tags[2].address``) inside ``tp``; None if lost."""
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", loc):
        tp, _ = _unwrap(tp)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if index and origin in (list, tuple, set, frozenset) and args:
            tp = args[int(index)] if origin is tuple and len(args) > int(index) and args[-1] is not ... else args[0]
        elif name and isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            hints = typing.get_type_hints(tp, include_extras=True)
            fields = {f.encode_name: f.name for f in msgspec.structs.fields(tp)}
            tp = hints.get(fields.get(name, name))
        elif name and origin is dict and args:
            tp = args[1]
        else:
            return None
    return tp


def number(value: Any, hexa: bool = False) -> str:
    """A number the way a user writes it in TOML: 0x53 for hex options, 2.5, 1e-06."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return describe(value)
    if hexa and isinstance(value, int):
        return f"0x{value:02X}" if value >= 0 else f"-0x{-value:02X}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(metas: list[msgspec.Meta], kind: str, hexa: bool) -> str | None:
    """``an integer from 0x03 to 0x77``, ``a number > 0 and <= 600``: every bound of the option."""
    lo = next(
        ((m.ge, ">=") if m.ge is not None else (m.gt, ">") for m in metas if m.ge is not None or m.gt is not None), None
    )
    hi = next(
        ((m.le, "<=") if m.le is not None else (m.lt, "<") for m in metas if m.le is not None or m.lt is not None), None
    )
    if lo is None and hi is None:
        return None
    if lo is not None and hi is not None and lo[1] == ">=" and hi[1] == "<=":
        return f"{kind} from {number(lo[0], hexa)} to {number(hi[0], hexa)}"
    parts = [f"{b[1]} {number(b[0], hexa)}" for b in (lo, hi) if b is not None]
    return f"{kind} " + " and ".join(parts)


def _choices(tp: Any) -> list[str] | None:
    """The allowed values of an enum or Literal type, as written in TOML."""
    if typing.get_origin(tp) is typing.Literal:
        return [str(a) for a in typing.get_args(tp)]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [str(m.value) for m in tp]
    return None


def _walk(value: Any, loc: str) -> Any:
    """Follow a msgspec location like ``$.a[2].b`` into ``value``."""
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", loc):
        try:
            value = value[int(index)] if index else value[name]
        except (KeyError, IndexError, TypeError):
            return value
    return value


# The msgspec message shapes this module reads (msgspec is pinned to the versions whose messages
# tests/agent/test_validate.py checks; a new format makes that test fail, not the messages vague).
CONSTRAINT = re.compile(r"^Expected `(\w+)` (?:>=|<=|>|<) ")
WRONG_TYPE = re.compile(r"^Expected `([\w | ]+)`, got `(\w+)`$")
ENUM = "Invalid enum value"
TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}
TYPE_WORDS |= {"object": "a table", "array": "a list", "null": "nothing"}


def _wanted(names: str) -> str:
    """``int | null`` -> ``an integer``: what an option takes, in the words of its users."""
    words = [TYPE_WORDS.get(n.strip(), n.strip()) for n in names.split("|") if n.strip() != "null"]
    return " or ".join(words) or "nothing"


def _unquote_hint(offending: Any, expected: str) -> str:
    """A quoted number or boolean from TOML: say to drop the quotes (no silent conversion)."""
    if not isinstance(offending, str):
        return ""
    text = offending.strip()
    looks = {
        "bool": text in ("true", "false"),
        "int": bool(re.fullmatch(r"[-+]?(0x[0-9a-fA-F]+|\d+)", text)),
        "float": bool(re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text)),
    }
    if any(looks.get(n.strip(), False) for n in expected.split("|")):
        return f" (a string: write {text} without quotes)"
    return ""


def _message(exc: msgspec.ValidationError, value: Any, tp: Any, path: str) -> str:
    text, _, loc = str(exc).partition(" - at `")
    loc = loc.rstrip("`") or "$"  # no location: the value itself
    where = path + loc[1:]
    offending = _walk(value, loc)
    leaf, metas = _unwrap(_type_at(tp, loc))
    hexa = any((m.extra or {}).get("format") == "hex" for m in metas)
    constraint = CONSTRAINT.match(text)
    if constraint is not None:
        kind = "an integer" if constraint.group(1) == "int" else "a number"
        wanted = _range(metas, kind, hexa)
        if wanted is not None:
            return f"{where}: expected {wanted}, got {number(offending, hexa)}"
    if text.startswith(ENUM):
        choices = _choices(leaf)
        if choices is not None:
            return f"{where}: invalid value {number(offending)} (expected one of: {', '.join(choices)})"
    wrong = WRONG_TYPE.match(text)
    if wrong is not None:
        hint = _unquote_hint(offending, wrong.group(1))
        return f"{where}: expected {_wanted(wrong.group(1))}, got {describe(offending)}{hint}"
    text = text.split(", got `")[0].replace("`", "")
    text = text[:1].lower() + text[1:]
    return f"{where}: {text}, got {describe(offending)}"


def _struct_type(tp: Any) -> type[msgspec.Struct] | None:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    return None


def _list_item_struct(tp: Any) -> type[msgspec.Struct] | None:
    if typing.get_origin(tp) in (list, tuple):
        args = typing.get_args(tp)
        return _struct_type(args[0]) if args else None
    return None


def _field(value: Any, tp: Any, path: str, errors: list[str]) -> Any:
    struct = _struct_type(tp)
    if struct is not None:
        return validate(value, struct, path, errors)
    item = _list_item_struct(tp)
    if item is not None and isinstance(value, list):
        return [validate(v, item, join(path, i), errors) for i, v in enumerate(value)]
    try:
        return msgspec.convert(value, tp, strict=True)  # no "2" -> 2 or "false" -> False from TOML
    except msgspec.ValidationError as exc:
        errors.append(_message(exc, value, tp, path))
        return None


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    """A struct's fields by their config name. Cached: ``msgspec.structs.fields`` evaluates the
    class's annotations anew each call (typing's string evaluation), about a third of validating
    the reference plant's config at start-up, where the same option structs recur per instance."""
    return {f.encode_name: f for f in msgspec.structs.fields(cls)}


def validate(data: Any, cls: type[msgspec.Struct], path: str, errors: list[str]) -> Any:
    """Convert ``data`` into ``cls``; append every problem to ``errors``; None when invalid."""
    if not isinstance(data, dict):
        errors.append(f"{path or '(top)'}: expected a table, got {describe(data)}")
        return None
    fields = _fields(cls)
    before = len(errors)
    converted: dict[str, Any] = {}
    for key, value in data.items():
        f = fields.get(key)
        if f is None:
            allowed = ", ".join(sorted(fields)) or "none"
            hint = did_you_mean(str(key), fields)
            errors.append(f"{join(path, str(key))}: unknown key ({hint}allowed: {allowed})")
            continue
        converted[key] = _field(value, f.type, join(path, key), errors)
    for key, f in fields.items():
        if key not in data and f.required:
            errors.append(f"{join(path, key)}: required key is missing")
    if len(errors) > before:
        return None
    try:
        return msgspec.convert(data, cls, strict=True)
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        errors.append(f"{path or '(top)'}: {exc}")
        return None
