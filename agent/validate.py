"""Validate plain data (parsed TOML, JSON, MessagePack) against msgspec structs, collecting
*every* error with its path instead of stopping at the first one."""

from __future__ import annotations

import enum
import typing
from typing import Any

import msgspec


def join(path: str, key: str | int) -> str:
    """Append a key or an index to a dotted config path."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


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


def _enum_of(tp: Any) -> type[enum.Enum] | None:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    for arg in typing.get_args(tp) or (tp,):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return arg
    return None


def _walk(value: Any, loc: str) -> Any:
    """Follow a msgspec location like ``$.a[2].b`` into ``value``."""
    import re

    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", loc):
        try:
            value = value[int(index)] if index else value[name]
        except (KeyError, IndexError, TypeError):
            return value
    return value


def _message(exc: msgspec.ValidationError, value: Any, tp: Any, path: str) -> str:
    text, _, loc = str(exc).partition(" - at `")
    loc = loc.rstrip("`")
    where = path + (loc[1:] if loc.startswith("$") else "")
    offending = _walk(value, loc)
    text = text.split(", got `")[0].replace("`", "")
    text = text[:1].lower() + text[1:]
    enum_type = _enum_of(tp)
    if text.startswith("invalid enum value") and enum_type is not None:
        choices = ", ".join(str(m.value) for m in enum_type)
        return f"{where}: invalid value {describe(offending)} (expected one of: {choices})"
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
        return msgspec.convert(value, tp, strict=False)
    except msgspec.ValidationError as exc:
        errors.append(_message(exc, value, tp, path))
        return None


def validate(data: Any, cls: type[msgspec.Struct], path: str, errors: list[str]) -> Any:
    """Convert ``data`` into ``cls``; append every problem to ``errors``; None when invalid."""
    if not isinstance(data, dict):
        errors.append(f"{path or '(top)'}: expected a table, got {describe(data)}")
        return None
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    before = len(errors)
    converted: dict[str, Any] = {}
    for key, value in data.items():
        f = fields.get(key)
        if f is None:
            allowed = ", ".join(sorted(fields)) or "none"
            errors.append(f"{join(path, str(key))}: unknown key (allowed: {allowed})")
            continue
        converted[key] = _field(value, f.type, join(path, key), errors)
    for key, f in fields.items():
        if key not in data and f.required:
            errors.append(f"{join(path, key)}: required key is missing")
    if len(errors) > before:
        return None
    try:
        return msgspec.convert(data, cls, strict=False)
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        errors.append(f"{path or '(top)'}: {exc}")
        return None
