"""Declared values enforced at run time: what a driver returns and what a plugin emits is checked
against its declaration before anything after it (plugins, native messages, Sparkplug, the
recorder, history) sees it.

A value of the wrong type, a NaN or an infinity, a list where one value is declared (or a list
longer than its ``length``) becomes null with quality ``bad_value``; the first time a key goes bad
(one episode, until it is good again) an event ``bad_value`` names it, what came and what was
declared. A key the source does not declare is dropped and named once (``undeclared_value``); a
``*`` segment in a declaration matches any name. A NaN or infinity that already carries a quality
of its own (the driver knew) becomes null with that quality, without an event. A source that
declares nothing is checked for NaN and infinity only.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from edge_agent.agent.config.declared_values import FLOAT32_MAX, WILDCARD, declared, driver_values, fits, key_matches
from edge_agent.agent.config.schema import Instance
from edge_agent.drivers.contract import DType, Quality, Values, ValueSpec
from edge_agent.drivers.dotted_keys import is_map

BAD_VALUE: Final = str(Quality.BAD_VALUE)  # docs/messages.md, quality codes
FLOAT64_MAX: Final = sys.float_info.max
MAX_SHOWN_CHARS: Final = 80  # what came, as the event shows it
MAX_NAMED_KEYS: Final = 10_000  # undeclared keys remembered (a driver inventing names must not grow memory)

INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what MessagePack (and Sparkplug's Int64/UInt64) can carry
_FLOATS: Final = (DType.FLOAT32, DType.FLOAT64)
_NUMBERS: Final = (DType.FLOAT32, DType.FLOAT64, DType.INT)
_OPEN: Final = ValueSpec(key=WILDCARD, dtype=DType.FLOAT64)  # marker: the source declares nothing
_DROP: Final = object()
_UNSEEN: Final = (math.inf, -math.inf)  # a key whose float range is not looked up yet (matches no float)

Report = Callable[[str, str, dict[str, Any]], None]  # (kind, message, fields): an event of the instance


def declared_as(spec: ValueSpec) -> str:
    """What a declaration allows, in words (``float32``, ``a list of up to 4 float32``)."""
    return str(spec.dtype) if spec.length is None else f"a list of up to {spec.length} {spec.dtype}"


def shown(value: Any) -> str:
    """What came, short enough for an event: ``str 'twelve'``, ``float nan``."""
    text = f"{type(value).__name__} {value!r}"
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def _scalar_ok(dtype: DType, value: Any) -> bool:
    """One value against its dtype: the right type, finite, and one the wire can carry."""
    t = type(value)
    if t is float:
        if dtype not in _FLOATS:
            return False
        return math.isfinite(value) and (dtype is not DType.FLOAT32 or -FLOAT32_MAX <= value <= FLOAT32_MAX)
    if t is int:
        if dtype is DType.INT or dtype is DType.FLOAT64:
            return INT_MIN <= value <= INT_MAX
        return dtype is DType.FLOAT32 and -FLOAT32_MAX <= value <= FLOAT32_MAX
    if t is bool:
        return dtype is DType.BOOL
    if t is str:
        return dtype is DType.STR
    item = getattr(value, "item", None)  # numpy scalars: judged by the Python value they stand for
    if not callable(item) or not fits(dtype, value):
        return False
    plain = item()
    return type(plain) in (float, int, bool, str) and _scalar_ok(dtype, plain)


def value_ok(spec: ValueSpec, value: Any) -> bool:
    """Does one value (not None) agree with its declaration?"""
    if spec is _OPEN:
        return not (type(value) is float and not math.isfinite(value))
    if spec.length is None:
        return _scalar_ok(spec.dtype, value)
    return (
        isinstance(value, (list, tuple))
        and len(value) <= spec.length
        and all(v is None or _scalar_ok(spec.dtype, v) for v in value)
    )


def _finite_float(dtype: DType, value: float) -> bool:
    """A float that fits ``dtype`` as it is (the fast path: no NaN, no infinity, within float32)."""
    if dtype is DType.FLOAT32:
        return -FLOAT32_MAX <= value <= FLOAT32_MAX  # False for NaN too
    return dtype is DType.FLOAT64 and value - value == 0.0  # inf - inf and NaN are NaN


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


class ValueGuard:
    """The checks of one source (an instance's driver, or its plugin) with its episodes."""

    def __init__(
        self, source: str, specs: Sequence[ValueSpec] | None, report: Report, *, reading: bool = False
    ) -> None:
        # ``reading``: a driver's reading, where the contract's form of a missing number is NaN
        # with a quality (plugins compute with it); in a plugin's output it is null
        self._reading = reading
        self.source = source  # "driver 'ina219'" or "plugin 'values'", for the events
        self._open = specs is None
        self._exact = {s.key: s for s in specs or () if WILDCARD not in s.key}
        self._patterns = [s for s in specs or () if WILDCARD in s.key]
        self._cache: dict[str, ValueSpec | None] = {}  # concrete keys matched against the patterns
        # scalar float declarations by key: the range a float must lie in (NaN never does); a finite
        # float of a declared key, the common case, is then one lookup and one comparison
        self._float_range: dict[str, tuple[float, float] | None] = {
            s.key: (-FLOAT32_MAX, FLOAT32_MAX) if s.dtype is DType.FLOAT32 else (-FLOAT64_MAX, FLOAT64_MAX)
            for s in specs or ()
            if WILDCARD not in s.key and s.length is None and s.dtype in _FLOATS
        }
        self._report = report
        self.bad: set[str] = set()  # keys in a bad_value episode
        self._named: set[str] = set()  # undeclared keys already named in an event

    def spec(self, key: str) -> ValueSpec | None:
        """The declaration of ``key`` (None: undeclared)."""
        if self._open:
            return _OPEN
        found = self._exact.get(key)
        if found is not None or not self._patterns:
            return found
        if key not in self._cache:
            if len(self._cache) >= MAX_NAMED_KEYS:
                self._cache.clear()
            self._cache[key] = next((s for s in self._patterns if key_matches(s.key, key)), None)
        return self._cache[key]

    def _learn_range(self, key: str) -> tuple[float, float] | None:
        """The float range of ``key`` from its declaration (a pattern's, or none), remembered."""
        spec = self.spec(key)
        span = None
        if spec is _OPEN:
            span = (-FLOAT64_MAX, FLOAT64_MAX)  # a source that declares nothing: any finite float
        elif spec is not None and spec.length is None and spec.dtype in _FLOATS:
            span = (-FLOAT32_MAX, FLOAT32_MAX) if spec.dtype is DType.FLOAT32 else (-FLOAT64_MAX, FLOAT64_MAX)
        if len(self._float_range) < MAX_NAMED_KEYS:  # a source inventing names must not grow memory
            self._float_range[key] = span
        return span

    def check(
        self, values: Mapping[str, Any], quality: Mapping[str, str] | None
    ) -> tuple[Mapping[str, Any], Mapping[str, str] | None]:
        """``values`` (nested maps allowed) and ``quality`` as they may go on; unchanged when all is well."""
        changes: dict[tuple[str, ...], Any] = {}
        marks: dict[str, str] = {}
        undeclared: list[str] = []
        self._walk(values, (), quality or {}, changes, marks, undeclared)
        if undeclared:
            self._name_undeclared(undeclared)
        if not changes:
            return values, quality
        return _apply(values, changes), {**(quality or {}), **marks} or None

    def _walk(
        self,
        d: Mapping[str, Any],
        path: tuple[str, ...],
        quality: Mapping[str, str],
        changes: dict[tuple[str, ...], Any],
        marks: dict[str, str],
        undeclared: list[str],
    ) -> None:
        prefix = ".".join(path) + "." if path else ""
        exact = None if self._open or self._patterns else self._exact  # spec() inlined: 500 tags a second
        ranges = self._float_range
        bad = self.bad
        for k, value in d.items():
            if type(value) is float and type(k) is str:  # the common case first: a declared float in range
                span = ranges.get(prefix + k, _UNSEEN)
                if span is _UNSEEN:
                    span = self._learn_range(prefix + k)
                if span is not None and span[0] <= value <= span[1]:
                    if bad and prefix + k in bad:
                        bad.discard(prefix + k)
                    continue
            if is_map(value) and isinstance(k, str):
                self._walk(value, (*path, k), quality, changes, marks, undeclared)
                continue
            if isinstance(k, str):
                key = prefix + k
                spec = exact.get(key) if exact is not None else self.spec(key)
            else:
                key, spec = k, None
            if spec is None:
                changes[(*path, k)] = _DROP
                undeclared.append(str(key))
            elif value is None:
                continue  # null (with its quality) is neither junk nor a recovery
            elif type(value) is float and spec.length is None and _finite_float(spec.dtype, value):
                if self.bad and key in self.bad:  # the common case, inlined: a finite float
                    self.bad.discard(key)
            elif value_ok(spec, value):
                if self.bad and key in self.bad:
                    self.bad.discard(key)
            else:
                own = quality.get(key, "good")
                if own != "good" and (_non_finite(value) or spec is _OPEN):
                    if not self._reading:
                        changes[(*path, k)] = None
                    continue  # the source knew the value is bad and said so: its quality stays
                changes[(*path, k)] = self._missing(spec)
                if own == "good":
                    marks[key] = BAD_VALUE
                self._bad_value(key, value, spec)

    def _missing(self, spec: ValueSpec) -> Any:
        """What stands for a bad value: null, or NaN for a number in a driver's reading."""
        return math.nan if self._reading and spec.length is None and spec.dtype in _NUMBERS else None

    def _bad_value(self, key: str, value: Any, spec: ValueSpec) -> None:
        if key in self.bad:
            return
        self.bad.add(key)
        wanted = "a finite number" if spec is _OPEN else declared_as(spec)
        self._report(
            "bad_value",
            f"{self.source} gave {key} = {shown(value)}, declared {wanted}: published as null (quality bad_value)",
            {"key": key, "got": shown(value), "declared": wanted, "quality": BAD_VALUE},
        )

    def _name_undeclared(self, keys: list[str]) -> None:
        new = [k for k in dict.fromkeys(keys) if k not in self._named]
        if not new or len(self._named) >= MAX_NAMED_KEYS:
            return
        self._named.update(new)
        listed = ", ".join(new[:10]) + (f" (+{len(new) - 10} more)" if len(new) > 10 else "")
        self._report(
            "undeclared_value",
            f"{self.source} gave keys it does not declare, dropped: {listed}",
            {"keys": new[:100]},
        )

    def check_reading(self, reading: Any) -> Any:
        """A driver's reading with its values checked (a reading that is not a Values passes)."""
        if not isinstance(reading, Values):
            return reading
        quality = {k: str(q) for k, q in reading.quality.items()}
        values, checked_quality = self.check(reading.values, quality)
        if values is reading.values:
            return reading
        marks = {k: Quality.BAD_VALUE for k, q in (checked_quality or {}).items() if q == BAD_VALUE}
        kept = {k: q for k, q in {**reading.quality, **marks}.items() if k in values}
        return replace(reading, values=values, quality=kept)


class InstanceGuards:
    """One instance's declared values enforced at both seams: the driver's readings (checked on the
    lane's thread, so their events wait until the loop drains them) and the plugin's emits."""

    def __init__(self, inst: Instance, driver_name: str, report: Report) -> None:
        where_from = f"instance {inst.name!r}:"
        self._report = report
        self._pending: list[tuple[str, str, dict[str, Any]]] = []
        self.driver = ValueGuard(f"{where_from} driver {driver_name}", _driver_specs(inst), self._queue, reading=True)
        self.emit = ValueGuard(f"{where_from} plugin {inst.plugin.name!r}", declared(inst), report)

    def _queue(self, kind: str, message: str, fields: dict[str, Any]) -> None:
        self._pending.append((kind, message, fields))  # list.append: safe from the lane's thread

    def check_reading(self, instance: str, reading: Any) -> Any:
        """The innermost driver tap's after-read: the reading as declared (bad values replaced)."""
        return self.driver.check_reading(reading)

    def drain(self) -> None:
        """On the loop, after every driver call: the events the driver's guard queued."""
        while self._pending:
            self._report(*self._pending.pop(0))

    def bad_keys(self) -> list[str]:
        """The keys in a bad_value episode now, from either seam."""
        return sorted(self.driver.bad | self.emit.bad)


def _driver_specs(inst: Instance) -> tuple[ValueSpec, ...] | None:
    """What the instance's driver declares (None: nothing, or a declaration that fails)."""
    try:
        return driver_values(inst)
    except Exception:  # a third-party declaration that fails: check-config said so; check NaN only
        return None


def _apply(d: Mapping[str, Any], changes: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    """A copy of the nested ``d`` with the changed leaves set (or dropped: ``_DROP``); untouched
    branches are shared, not copied."""
    out = dict(d)
    by_head: dict[str, dict[tuple[str, ...], Any]] = {}
    for path, value in changes.items():
        if len(path) == 1:
            if value is _DROP:
                out.pop(path[0], None)
            else:
                out[path[0]] = value
        else:
            by_head.setdefault(path[0], {})[path[1:]] = value
    for head, sub in by_head.items():
        inner = _apply(out[head], sub)
        if inner:
            out[head] = inner
        else:  # every key under it dropped: no empty map on the wire
            del out[head]
    return out
