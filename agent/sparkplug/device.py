"""The metric table of the edge node: every device's metrics with their aliases and last values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_agent.agent.sparkplug.payload import FROM_DTYPE, DataType, guess_type, metric_name

# Event metrics every device carries (docs/sparkplug.md, events).
EVENT_METRICS = (
    ("Event/Kind", DataType.STRING),
    ("Event/Message", DataType.STRING),
    ("Event/Severity", DataType.STRING),
    ("Event/Count", DataType.INT64),
)


@dataclass(slots=True)
class MetricDef:
    key: str  # our key: dotted data key, or a "/" path for event metrics
    name: str  # Sparkplug metric name
    alias: int
    datatype: DataType
    unit: str = ""
    writable: bool = False
    value: Any = None
    quality: str | None = None  # None: good
    ts_ms: int = 0


@dataclass
class Device:
    """One instance as a Sparkplug device."""

    name: str
    metrics: dict[str, MetricDef] = field(default_factory=dict)
    born: bool = False
    lists: dict[str, int] = field(default_factory=dict)  # declared list values: key -> length

    def __iter__(self) -> Iterator[MetricDef]:
        return iter(self.metrics.values())


class Aliases:
    """Aliases unique across the whole edge node (Sparkplug 3.0), stable for the process's life."""

    def __init__(self) -> None:
        self._next = 1
        self._given: dict[tuple[str, str], int] = {}

    def get(self, device: str, key: str) -> int:
        alias = self._given.get((device, key))
        if alias is None:
            alias = self._given[(device, key)] = self._next
            self._next += 1
        return alias


def metric_items(
    values: Mapping[str, Any], prefix: str = "", lists: Mapping[str, int] | None = None
) -> Iterator[tuple[str, Any]]:
    """Nested maps -> (dotted key, value); a list becomes one value per element (``key.0``,
    ``key.1``...), padded with None up to its declared length so no element stays stale."""
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            yield from metric_items(v, key + ".", lists)
        elif isinstance(v, (list, tuple)):
            n = max(len(v), (lists or {}).get(key, 0))
            for i in range(n):
                yield f"{key}.{i}", v[i] if i < len(v) else None
        else:
            yield key, v


def declare(device: Device, aliases: Aliases, specs: Iterable[Any]) -> None:
    """Add declared values (ValueSpec: key, dtype, unit, writable) and the event metrics."""
    for spec in specs:
        if "*" in spec.key:
            continue  # a name known only at run time: added when its first value comes
        datatype = FROM_DTYPE.get(str(spec.dtype), DataType.DOUBLE)
        length = getattr(spec, "length", None)
        keys = [spec.key] if length is None else [f"{spec.key}.{i}" for i in range(length)]
        if length is not None:
            device.lists[spec.key] = length
        for key in keys:
            add(device, aliases, key, datatype, unit=spec.unit, writable=spec.writable)
    for key, datatype in EVENT_METRICS:
        add(device, aliases, key, datatype)


def add(
    device: Device, aliases: Aliases, key: str, datatype: DataType, *, unit: str = "", writable: bool = False
) -> MetricDef:
    """Add one metric (or return it when known)."""
    m = device.metrics.get(key)
    if m is None:
        name = key if "/" in key else metric_name(key)
        m = device.metrics[key] = MetricDef(key, name, aliases.get(device.name, key), datatype, unit, writable)
    return m


def learn(device: Device, aliases: Aliases, key: str, value: Any) -> MetricDef:
    """A value no declaration covered: add it with the type of its value (lossless)."""
    return add(device, aliases, key, guess_type(value))
