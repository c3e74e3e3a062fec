"""The driver conformance kit: every rule of the driver contract as a check that returns problems.

Each check returns a list of problems ("check: what is wrong"), empty when the driver conforms;
a misbehaving driver (a raw exception, a hung read, a raising factory) is reported, never lets
the kit crash or hang. From a test, the easiest way in is the class to subclass, which runs each
check as its own test::

    from edge_agent.drivers.testing import DriverConformance

    class TestMyChip(DriverConformance):
        spec = SPEC
        options = {"backend": "sim"}

or call the functions directly: ``assert check_driver(SPEC, {"backend": "sim"}) == []``.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import msgspec
from edge_agent.drivers.contract import (
    DRIVER_FEATURES,
    ENTRY_POINT_GROUP,
    Capability,
    DriverSpec,
    Quality,
    Values,
    Waveform,
    feature_problem,
)
from edge_agent.drivers.contract import check_driver_spec as _contract_check
from edge_agent.drivers.errors import DriverError
from edge_agent.drivers.testing.calls import Caller, DeadlineExceeded

READ_DEADLINE_S = 5.0
UNKNOWN_KEY = "conformance_unknown_key"
QUALITIES = frozenset(q.value for q in Quality)
_VALUE_TYPES = (bool, int, float, str)


def raised(where: str, exc: BaseException) -> str:
    if isinstance(exc, DriverError):
        return f"{where}: raised {type(exc).__name__}: {exc}"
    return (
        f"{where}: raised {type(exc).__name__} ({exc}), not a DriverError: a plain exception skips the "
        "quality path and restarts the instance; wrap it in a drivers.errors class"
    )


def check_spec(spec: object) -> list[str]:
    """The spec object itself: type, name, options class, factory, capabilities, device access."""
    try:
        _contract_check(spec, f"driver {getattr(spec, 'name', '?')!r}")
    except Exception as exc:
        return [f"spec: {exc}"]
    return []


def check_registration(spec: Any, group: str = ENTRY_POINT_GROUP) -> list[str]:
    """An entry point named ``spec.name`` in ``group`` loads exactly this spec (the package is installed)."""
    eps = [ep for ep in entry_points(group=group) if ep.name == spec.name]
    if not eps:
        return [
            f"registration: no entry point {spec.name!r} in group {group!r} (declare it in pyproject.toml "
            f'[project.entry-points."{group}"] and install the package: pip install -e .)'
        ]
    problems = []
    for ep in eps:
        try:
            loaded = ep.load()
        except Exception as exc:
            problems.append(f"registration: entry point {ep.value} does not load: {type(exc).__name__}: {exc}")
            continue
        if loaded is not spec:
            problems.append(f"registration: entry point {spec.name!r} ({ep.value}) is another object than this spec")
    return problems


def check_options(options_type: type, given: Mapping[str, Any]) -> list[str]:
    """The options schema: ``given`` is accepted, its defaults are valid, an unknown key is refused."""
    try:
        opts: Any = msgspec.convert(dict(given), options_type)
    except msgspec.ValidationError as exc:
        return [f"options: {dict(given)} is rejected: {exc}"]
    problems = []
    try:  # msgspec does not check defaults against their constraints: a round trip does
        msgspec.convert(msgspec.to_builtins(opts), options_type)
    except (msgspec.ValidationError, TypeError) as exc:
        problems.append(f"options: the defaults (with {dict(given)}) are not valid: {exc}")
    try:
        msgspec.convert({**given, UNKNOWN_KEY: 1}, options_type)
        problems.append(f"options: an unknown key ({UNKNOWN_KEY!r}) is accepted: subclass contract.Options")
    except msgspec.ValidationError:
        pass
    try:
        msgspec.json.schema(options_type)
    except Exception as exc:
        problems.append(f"options: no JSON Schema for the listings and docs: {type(exc).__name__}: {exc}")
    return problems


def _declared(spec: Any, opts: Any) -> dict[str, Any] | None:
    values_fn = getattr(spec, "values", None)
    if not callable(values_fn):
        return None
    return {v.key: v for v in values_fn(opts)}


def dtype_matches(dtype: str, value: object) -> bool:
    """Whether a Python value fits a declared dtype (float32/float64/int/bool/str)."""
    dtype = str(dtype)
    if dtype == "bool":
        return isinstance(value, bool)
    if dtype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if dtype in ("float32", "float64"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str) if dtype == "str" else False


def check_values(
    where: str,
    values: Mapping[Any, Any],
    quality: Mapping[Any, Any],
    declared: Mapping[str, Any] | None,
    *,
    allow_none: bool = False,
) -> list[str]:
    """Keys, value types, quality codes and declared values of one set of named values.

    A driver's reading never holds None (a missing value is NaN with a quality); a plugin may emit
    None for a value that is not available (not yet computed, or its quality is not good)."""
    problems = []
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            problems.append(f"{where}: key {key!r} is not a non-empty str")
            continue
        if value is None:
            if not allow_none:
                problems.append(f"{where}: value {key!r} is None (a missing value is a quality, e.g. NaN + 'bad')")
        elif not isinstance(value, _VALUE_TYPES):
            problems.append(f"{where}: value {key!r} is a {type(value).__name__}, not bool/int/float/str")
        elif isinstance(value, float) and not math.isfinite(value) and quality.get(key, "good") == "good":
            problems.append(
                f"{where}: {key!r} = {value!r} without a quality: a NaN or an infinity needs one (the agent "
                "publishes it as null with quality bad_value and raises a bad_value event)"
            )
        if declared is not None and isinstance(key, str):
            spec = declared.get(key)
            if spec is None:
                problems.append(f"{where}: key {key!r} is not among the declared values {sorted(declared)[:8]}")
            elif value is not None and not dtype_matches(spec.dtype, value):
                problems.append(f"{where}: {key!r} = {value!r} does not match its declared dtype {spec.dtype}")
    for key, q in quality.items():
        if not isinstance(key, str):
            problems.append(f"{where}: quality key {key!r} is not a str")
        elif key not in values and not any(str(k).startswith(key + ".") for k in values):
            problems.append(f"{where}: quality for {key!r}, which is not among the values")
        if not (isinstance(q, str) and q in QUALITIES):
            problems.append(f"{where}: quality {q!r} of {key!r} is not one of {sorted(QUALITIES)}")
    return problems


def check_reading(spec: DriverSpec, reading: object, declared: Mapping[str, Any] | None = None) -> list[str]:
    """One reading: the type its capabilities promise, well-formed, and as declared."""
    if isinstance(reading, Waveform):
        if Capability.WAVEFORM not in spec.provides:
            return [f"read: returned a Waveform but the spec provides {sorted(spec.provides)}"]
        return _check_waveform(reading)
    if isinstance(reading, Values):
        if spec.provides == {Capability.WAVEFORM}:
            return ["read: returned Values but the spec provides only waveform"]
        if not isinstance(reading.values, Mapping) or not isinstance(reading.quality, Mapping):
            return ["read: Values.values and Values.quality must be mappings"]
        return check_values("read", reading.values, reading.quality, declared)
    return [f"read: returned {type(reading).__name__}, expected Values or Waveform (contract.Capability)"]


def _check_waveform(w: Waveform) -> list[str]:
    shape = getattr(w.samples, "shape", None)
    problems = []
    if not (isinstance(w.rate_hz, (int, float)) and w.rate_hz > 0 and math.isfinite(w.rate_hz)):
        problems.append(f"read: waveform rate_hz {w.rate_hz!r} is not a positive number")
    if not w.axes:
        problems.append("read: waveform without axes")
    if shape is None or len(shape) != 2 or shape[1] != len(w.axes):
        problems.append(f"read: waveform samples must have shape (n, {len(w.axes)} axes), got {shape}")
    if not (isinstance(w.lost_samples, int) and w.lost_samples >= 0):
        problems.append(f"read: lost_samples must be an int >= 0, got {w.lost_samples!r}")
    return problems


def _make(spec: DriverSpec, opts: Any) -> tuple[Any, list[str]]:
    try:
        return spec.factory(opts), []
    except Exception as exc:
        return None, [raised("factory", exc)]


def _methods_agree(driver: Any) -> list[str]:
    kinds = {inspect.iscoroutinefunction(getattr(driver, m, None)) for m in ("open", "read", "close")}
    missing = [m for m in ("open", "read", "close") if not callable(getattr(driver, m, None))]
    if missing:
        return [f"driver: no {', '.join(missing)} method"]
    return [] if len(kinds) == 1 else ["driver: open/read/close must be all plain or all async def"]


def check_features(driver: Any) -> list[str]:
    """The optional features the driver object has (``write``, ``deadline_s``, ``failure``) fit their
    Protocols: one set only in ``__init__`` is not seen at load, and a bad one would be ignored at run time."""
    return [
        f"features: {problem}"
        for name in DRIVER_FEATURES
        if hasattr(driver, name) and (problem := feature_problem(driver, name))
    ]


def check_read_before_open(spec: DriverSpec, opts: Any, call: Caller, deadline_s: float) -> list[str]:
    """A read on a driver never opened raises a DriverError; close on it is safe."""
    driver, problems = _make(spec, opts)
    if driver is None:
        return problems
    try:
        got = call(driver.read, deadline_s)
        problems.append(f"read_before_open: returned a {type(got).__name__} instead of raising a DriverError")
    except DeadlineExceeded:
        return [f"read_before_open: did not return within {deadline_s} s"]
    except DriverError:
        pass
    except Exception as exc:
        problems.append(raised("read_before_open", exc))
    try:
        call(driver.close, deadline_s)
    except Exception as exc:
        problems.append(raised("close before open", exc))
    return problems


def check_life_cycle(
    spec: DriverSpec, opts: Any, call: Caller, *, reads: int = 3, deadline_s: float = READ_DEADLINE_S
) -> list[str]:
    """open, ``reads`` reads (the first two back to back, then 50 ms apart), close, close again."""
    driver, problems = _make(spec, opts)
    if driver is None:
        return problems
    problems += _methods_agree(driver) + check_features(driver)
    if problems:
        return problems
    declared = _declared(spec, opts)
    where = "open"
    try:
        call(driver.open, deadline_s)
        for i in range(1, reads + 1):
            if i > 2:  # reads 1 and 2 back to back: a read with no new sample due must still work
                time.sleep(0.05)
            where = f"read {i}"
            problems += check_reading(spec, call(driver.read, deadline_s), declared)
    except DeadlineExceeded as exc:
        # close() never runs while a read is stuck (the runtime keeps the same rule)
        return [*problems, f"{where}: {exc}"]
    except Exception as exc:
        problems.append(raised(where, exc))
    for n in ("close", "close again"):
        try:
            call(driver.close, deadline_s)
        except Exception as exc:
            problems.append(raised(n, exc) + " (close must be safe twice)")
    return problems


def check_failed_open(spec: DriverSpec, opts: Any, call: Caller, deadline_s: float = READ_DEADLINE_S) -> list[str]:
    """With options whose open must fail: open raises a DriverError, then close is safe (twice)."""
    driver, problems = _make(spec, opts)
    if driver is None:
        return problems
    try:
        call(driver.open, deadline_s)
        problems.append("failed_open: open() succeeded with the failing options")
    except DeadlineExceeded:
        return [f"failed_open: open did not return within {deadline_s} s"]
    except DriverError:
        pass
    except Exception as exc:
        problems.append(raised("failed_open: open", exc))
    for n in ("close after a failed open", "close again"):
        try:
            call(driver.close, deadline_s)
        except Exception as exc:
            problems.append(raised(n, exc))
    return problems


def check_driver(
    spec: DriverSpec,
    options: Mapping[str, Any],
    *,
    reads: int = 3,
    read_deadline_s: float = READ_DEADLINE_S,
    failing_open_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every check but registration; ``options`` select the simulated backend. Empty list = conforms."""
    problems = check_spec(spec)
    if problems:
        return problems
    problems = check_options(spec.options, options)
    try:
        opts = msgspec.convert(dict(options), spec.options)
    except msgspec.ValidationError:
        return problems
    with Caller() as call:
        problems += check_read_before_open(spec, opts, call, read_deadline_s)
        problems += check_life_cycle(spec, opts, call, reads=reads, deadline_s=read_deadline_s)
        if failing_open_options is not None:
            failing = msgspec.convert(dict(failing_open_options), spec.options)
            problems += check_failed_open(spec, failing, call, read_deadline_s)
    return problems
