"""Declared values: what each instance emits on ``data/{instance}``, from its specs and options.

A driver spec declares what one ``read()`` returns and a plugin spec what it emits, given the
driver's declaration (``DriverSpec.values`` / ``PluginSpec.values``). This module computes one
instance's declared values from the validated config; check-config, the listings, the
generated reference (docs/reference/) and the Sparkplug birth certificate all use it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edge_agent.drivers.contract import DType, ValueSpec

if TYPE_CHECKING:
    from edge_agent.agent.config import Instance
    from edge_agent.agent.registry import Registry

WILDCARD = "*"  # a key segment standing for a name known only at run time (system: instance names)


def driver_values(inst: Instance) -> tuple[ValueSpec, ...] | None:
    """What the instance's driver declares; None when it has no driver or declares nothing."""
    if inst.driver is None or inst.driver.values is None or inst.driver_options is None:
        return None
    return tuple(inst.driver.values(inst.driver_options))


def declared(inst: Instance) -> tuple[ValueSpec, ...] | None:
    """The values the instance emits; None when its plugin does not declare them."""
    if inst.plugin.values is None:
        return None
    return tuple(inst.plugin.values(inst.options, driver_values(inst) or ()))


def declared_values(instance_config: Instance, registry: Registry | None = None) -> tuple[ValueSpec, ...]:
    """One instance's declared values (empty when its plugin declares none). ``registry`` is
    accepted for callers holding one; the validated instance already carries its specs."""
    return declared(instance_config) or ()


def key_matches(pattern: str, key: str) -> bool:
    """Does a concrete dotted ``key`` match a declared key (``*`` matches one segment)?"""
    if WILDCARD not in pattern:
        return pattern == key
    parts, kparts = pattern.split("."), key.split(".")
    if len(parts) != len(kparts):
        return False
    return all(p == WILDCARD or fnmatch.fnmatchcase(k, p) for p, k in zip(parts, kparts, strict=True))


def find(values: Iterable[ValueSpec], key: str) -> ValueSpec | None:
    """The declaration of ``key`` (exact first, then wildcard), or None."""
    specs = list(values)
    for v in specs:
        if v.key == key:
            return v
    for v in specs:
        if key_matches(v.key, key):
            return v
    return None


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"x": {"rms_g": 1}}`` -> ``{"x.rms_g": 1}``: the dotted keys of a message's ``d`` map."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def dtype_of(value: Any) -> DType | None:
    """The dtype a Python value travels as (None for ``None``: a bad value's placeholder)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return DType.BOOL
    if isinstance(value, int):
        return DType.INT
    if isinstance(value, float):
        return DType.FLOAT64
    if isinstance(value, str):
        return DType.STR
    item = getattr(value, "item", None)  # numpy scalars
    return dtype_of(item()) if callable(item) else None


def fits(declared_type: DType, value: Any) -> bool:
    """Does an emitted value agree with its declared dtype? (``None`` always does; an int may
    fill a float: Python rounds 2.0 to 2 in places, msgpack keeps it as an int.)"""
    actual = dtype_of(value)
    if actual is None:
        return value is None
    if declared_type in (DType.FLOAT32, DType.FLOAT64):
        return actual in (DType.FLOAT64, DType.INT)
    return actual is declared_type


def undeclared(values: Sequence[ValueSpec], d: Mapping[str, Any]) -> list[str]:
    """Problems of one emitted ``d`` map against declared values ("key: problem")."""
    out: list[str] = []
    for key, value in flatten(d).items():
        spec = find(values, key)
        if spec is None:
            out.append(f"{key}: emitted but not declared")
        elif not fits(spec.dtype, value):
            out.append(f"{key}: declared {spec.dtype}, emitted {type(value).__name__} {value!r}")
    return out
