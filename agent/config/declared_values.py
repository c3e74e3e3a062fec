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

from edge_agent.agent.config.validation import close_matches, describe, did_you_mean
from edge_agent.drivers.contract import DType, ValueRef, ValueSpec
from edge_agent.drivers.dotted_keys import flatten

if TYPE_CHECKING:
    from edge_agent.agent.config.registry import Registry
    from edge_agent.agent.config.schema import Instance

FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32: beyond it a value travels or is stored as +-inf
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


def fits_spec(spec: ValueSpec, value: Any) -> bool:
    """Does an emitted value agree with its declaration (a list of up to ``length``, or one value)?"""
    if spec.length is None or value is None:  # None (a value with a bad quality) always fits
        return fits(spec.dtype, value)
    return isinstance(value, (list, tuple)) and len(value) <= spec.length and all(fits(spec.dtype, v) for v in value)


def undeclared(values: Sequence[ValueSpec], d: Mapping[str, Any]) -> list[str]:
    """Problems of one emitted ``d`` map against declared values ("key: problem")."""
    out: list[str] = []
    for key, value in flatten(d).items():
        spec = find(values, key)
        if spec is None:
            out.append(f"{key}: emitted but not declared")
        elif not fits_spec(spec, value):
            shape = f"{spec.dtype}" if spec.length is None else f"a list of up to {spec.length} {spec.dtype}"
            out.append(f"{key}: declared {shape}, emitted {type(value).__name__} {value!r}")
    return out


NUMERIC = frozenset({DType.FLOAT32, DType.FLOAT64, DType.INT})
MAX_LISTED = 8


def _hint(values: Sequence[ValueSpec], key: str) -> str:
    """A short list of what is declared, closest names first."""
    names = [v.key for v in values]
    close = close_matches(key, names)
    if close:
        return f"did you mean {', '.join(close)}?"
    if not names:
        return "it declares no values"
    shown = ", ".join(names[:MAX_LISTED])
    return f"declared: {shown}" + (f" (+{len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else "")


def _check_ref(ref: ValueRef, values: Sequence[ValueSpec], whose: str) -> str | None:
    spec = find(values, ref.key)
    if spec is None:
        return f"{describe(ref.key)} is not a value {whose} ({_hint(values, ref.key)})"
    if ref.numeric and spec.dtype not in NUMERIC:
        return f"{describe(ref.key)} {whose} is a {spec.dtype}, a number is needed here"
    return None


def _values_of(inst: Instance, errors: list[str], path: str) -> tuple[ValueSpec, ...] | None:
    """The instance's declared values; an error (not a crash) when its plugin cannot compute them
    from what the driver declares (a plugin needing a key the driver does not return)."""
    try:
        return declared(inst)
    except (KeyError, ValueError, LookupError, TypeError) as exc:
        dvals = driver_values(inst) or ()
        got = ", ".join(v.key for v in dvals[:MAX_LISTED]) or "nothing"
        dname = inst.driver.name if inst.driver else "none"
        errors.append(
            f"{path}: plugin {describe(inst.plugin.name)} does not work with what driver {describe(dname)} returns "
            f"({type(exc).__name__}: {exc}; the driver declares: {got})"
        )
        return None


def check_references(instances: Mapping[str, tuple[Instance, str]], names: Iterable[str], errors: list[str]) -> None:
    """Check every option naming a value (``PluginSpec.references``) against the declared values
    of the instance it names; ``instances``: name -> (validated instance, its config path)."""
    known = set(names)
    values = {name: _values_of(inst, errors, path) for name, (inst, path) in instances.items()}
    for name, (inst, path) in instances.items():
        refs = inst.plugin.references(inst.options) if inst.plugin.references is not None else ()
        for ref in refs:
            where = f"{path}.options.{ref.option}"
            if ref.driver:
                dvals = driver_values(inst)
                dname = inst.driver.name if inst.driver else "none"
                problem = None if dvals is None else _check_ref(ref, dvals, f"of driver {describe(dname)}")
            elif ref.instance is None or ref.instance == name:
                own = values[name]
                problem = None if own is None else _check_ref(ref, own, "of this instance")
            elif ref.instance not in known:
                listed = ", ".join(sorted(known)) or "none"
                where = f"{path}.options.{ref.instance_option or ref.option}"
                hint = did_you_mean(ref.instance, known)
                problem = f"no instance {describe(ref.instance)} in this config ({hint}instances: {listed})"
            else:
                other = values.get(ref.instance)  # None: disabled, invalid or undeclared
                problem = None if other is None else _check_ref(ref, other, f"of instance {describe(ref.instance)}")
            if problem is not None:
                errors.append(f"{where}: {problem}")
