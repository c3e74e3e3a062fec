"""Dotted keys of nested value maps (``{"x": {"rms_g": 1}}`` -> ``x.rms_g``), as docs/messages.md names them.

The one ``flatten`` of the tree; it lives at the bottom layer (drivers) so that drivers, plugins and
agent/ can all use it without importing upwards."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Types that are never a nested map: checked by identity first, because ``isinstance(v, Mapping)``
# goes through the ABC machinery (~0.3 us) and every data message passes here once per value.
_LEAVES: frozenset[type] = frozenset({float, int, str, bool, type(None), list, tuple})


def is_map(value: Any) -> bool:
    """``isinstance(value, Mapping)``, fast for the plain values a message holds."""
    t = type(value)
    return t is dict or (t not in _LEAVES and isinstance(value, Mapping))


def flatten(values: Mapping[Any, Any], prefix: str = "") -> dict[Any, Any]:
    """Nested maps as one flat map with dotted keys; a non-str key is kept as it is (not descended
    into, not turned into a string), so a checker can still name it."""
    out: dict[Any, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            out[key] = value
        elif is_map(value):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def numeric_leaves(message: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a nested message by dotted key (``x.velocity_rms_mm_s``), as floats: what limit
    alarms watch (bools, strings, lists and None are left out)."""
    out: dict[str, float] = {}
    _numbers(message, "", out)
    return out


def _numbers(values: Mapping[Any, Any], prefix: str, out: dict[Any, float]) -> None:
    for key, v in values.items():
        t = type(v)
        if t is float:
            out[prefix + key if isinstance(key, str) else key] = v
        elif t in _LEAVES and t is not int:
            continue  # str, bool, None, list, tuple
        elif isinstance(key, str) and is_map(v):
            _numbers(v, f"{prefix}{key}.", out)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[prefix + key if isinstance(key, str) else key] = float(v)


def numbers_at(message: Mapping[str, Any], keys: Iterable[str]) -> dict[str, float]:
    """``numeric_leaves(message)`` restricted to ``keys``, without flattening the whole message
    (a plugin with two alarms on an 80-value message looks up two values)."""
    out: dict[str, float] = {}
    for key in keys:
        v: Any = message
        for part in key.split("."):
            v = v.get(part) if is_map(v) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out
