"""Dotted keys of nested value maps (``{"x": {"rms_g": 1}}`` -> ``x.rms_g``), as docs/messages.md names them.

The one ``flatten`` of the tree; it lives at the bottom layer (drivers) so that drivers, plugins and
agent/ can all use it without importing upwards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten(values: Mapping[Any, Any], prefix: str = "") -> dict[Any, Any]:
    """Nested maps as one flat map with dotted keys; a non-str key is kept as it is (not descended
    into, not turned into a string), so a checker can still name it."""
    out: dict[Any, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}" if isinstance(key, str) else key
        if isinstance(value, Mapping) and isinstance(key, str):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def numeric_leaves(message: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a nested message by dotted key (``x.velocity_rms_mm_s``), as floats: what limit
    alarms watch (bools, strings, lists and None are left out)."""
    return {
        k: float(v) for k, v in flatten(message).items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
