"""The plugin contract: what a plugin gets from the runtime and what it must offer, in one file.

A plugin decides what to read, when, and what to compute and publish. It gets a
:class:`PluginContext` (its driver, its options, ``emit``, ``event``, a clock, a thread-pool
``call`` and the local data link) and never touches MQTT, files or sockets. Feature math lives in
pure functions (numpy in, numbers out) beside the plugin, so it is testable with no broker.

Third-party plugins register a :class:`PluginSpec` in the entry-point group
``edge_agent.plugins``::

    [project.entry-points."edge_agent.plugins"]
    myplugin = "my_package.plugin:SPEC"

The runtime calls ``await plugin.poll()`` at start + k x interval_s (drift-free; a slow poll
skips ticks and they are counted), and ``await plugin.close()`` on stop. An exception escaping
``poll`` becomes an event and a restart of the instance with backoff; a DriverError should
rather become a quality flag (see :meth:`PluginContext.emit`).

Specs, plugins and their context are generic over the plugin's options and the reading type
it expects (``Plugin[MyOptions, Values]``), so a type checker sees a plugin that reads the wrong
type. The contract is versioned like the driver contract (:data:`CONTRACT_VERSION`).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypedDict, TypeVar, cast

import msgspec
from edge_agent.drivers.contract import (
    READING_TYPES,
    Capability,
    ChannelReading,
    ContractError,
    Driver,
    DType,
    Quality,
    TemperatureReading,
    ThermalFrame,
    ValueRef,
    Values,
    ValueSpec,
    Waveform,
    Writable,
    check_contract_version,
    check_options_type,
    valid_name,
)
from edge_agent.drivers.errors import DriverError

ENTRY_POINT_GROUP = "edge_agent.plugins"

CONTRACT_VERSION: Final = "1.2"
"""The plugin contract's version, "MAJOR.MINOR" (same rules as the driver contract's)."""

T = TypeVar("T")
ReadingT = TypeVar("ReadingT")  # the reading type the plugin expects from its driver


class Severity(enum.StrEnum):
    """Event severities, mapped onto syslog levels in logs."""

    INFO = "info"
    WARNING = "warning"
    ALARM = "alarm"
    CRITICAL = "critical"


class Options(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for a plugin's options (the ``[instances.options]`` table)."""


OptionsT = TypeVar("OptionsT", bound=Options)


class UnknownCommand(Exception):
    """Raised by :meth:`Plugin.command` for a command name the plugin does not answer."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown command {name!r}")
        self.name = name


class InstanceStats(TypedDict, total=False):
    polls: int
    errors: int
    skipped_ticks: int
    restarts: int
    last_error: str
    state: str
    hung: int  # driver_hung episodes
    faults: int  # sensor_fault episodes (open() failed)


class AgentStats(TypedDict, total=False):
    """The agent's counters, as the ``system`` plugin publishes them (docs/messages.md)."""

    uptime_s: float
    queue_depth: int
    inflight: int
    sent: int
    bytes_sent: int
    reconnects: int
    connected: bool
    dropped: Mapping[str, int]  # per reason
    created: int
    instances: Mapping[str, InstanceStats]
    threads: Mapping[str, Any]  # threads, lane_threads, max_lane_threads, lanes, stuck (drivers.lanes)


class StateStore(Protocol):
    """Keyed plain-data storage that survives restarts, remote config pushes and upgrades
    (``ctx.agent.store``; plugins.common.state_store has the helper and the rules)."""

    def load(self, ns: str, key: str) -> Any:
        """The value saved under (ns, key), or None."""

    def save(self, ns: str, key: str, value: Any) -> None:
        """Remember a value; written within one flush interval."""

    def record(self, kind: str, ns: str, body: dict[str, Any]) -> int:
        """Append a permanent record now; return its id."""

    def records(self, kind: str, ns: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest records of a kind (optionally of one ns), newest first."""


class MemoryStore:
    """A StateStore in memory: the default when the runtime gives none (tests, the harness)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}
        self._records: list[tuple[str, str, dict[str, Any]]] = []

    def load(self, ns: str, key: str) -> Any:
        return self.values.get((ns, key))

    def save(self, ns: str, key: str, value: Any) -> None:
        self.values[(ns, key)] = value

    def record(self, kind: str, ns: str, body: dict[str, Any]) -> int:
        rid = len(self._records) + 1
        self._records.append((kind, ns, {"id": rid, "ts_ms": time.time_ns() // 1_000_000, **body}))
        return rid

    def records(self, kind: str, ns: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        out = [b for k, n, b in reversed(self._records) if k == kind and (ns is None or n == ns)]
        return out[:limit]


class CaptureService(Protocol):
    """The agent's capture service (``ctx.agent.recorder``) that the ``recorder`` plugin configures."""

    def configure(self, owner: str, options: Any) -> None:
        """Apply the trigger rules of instance ``owner`` (its RecorderOptions)."""

    def unconfigure(self, owner: str) -> None:
        """Drop the rules of instance ``owner``."""

    def stats(self) -> Mapping[str, int]:
        """The service's counters (captures, disk_bytes, saved_total...)."""


@dataclass(frozen=True)
class AgentInfo:
    """What the agent tells a plugin about itself (used by ``system``; tests leave the defaults)."""

    state_dir: str = ""  # [agent] state_dir; "" outside an agent
    stats: Callable[[], AgentStats] | None = None  # the agent's counters now; None outside an agent
    store: StateStore | None = None  # state that survives restarts; None: keep it in memory
    recorder: CaptureService | None = None  # None outside an agent: the recorder plugin records nothing


class Clock(Protocol):
    """Time source; the runtime passes the real one, tests may pass a scripted one."""

    def monotonic(self) -> float: ...

    def time_ms(self) -> int: ...


class RealClock:
    """The clock the runtime gives plugins: monotonic seconds and wall-clock milliseconds."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time_ms(self) -> int:
        return time.time_ns() // 1_000_000


class Emit(Protocol):
    def __call__(
        self,
        values: Mapping[str, Any],
        quality: Mapping[str, str] | None = None,
        *,
        ts_ms: int | None = None,
    ) -> None: ...


class EventFn(Protocol):
    def __call__(self, kind: str, message: str, severity: Severity = Severity.WARNING, **fields: Any) -> None: ...


class DataLink(Protocol):
    """Read-only view of the latest values other instances emitted (e.g. a tachometer's rpm)."""

    def latest(self, instance: str, key: str) -> tuple[Any, float] | None:
        """Return (value, age_s) of ``key`` last emitted by ``instance``, or None."""


@dataclass(frozen=True)
class PluginContext(Generic[OptionsT, ReadingT]):
    """Everything a plugin instance may use; built by the runtime, or by tests directly.
    ``OptionsT``: the plugin's options type; ``ReadingT``: the reading type its driver returns."""

    instance: str
    options: OptionsT  # an instance of the plugin's Options subclass
    driver: Driver[ReadingT] | None
    emit: Emit
    event: EventFn
    clock: Clock
    call: Callable[..., Awaitable[Any]]  # await ctx.call(fn, *args): runs fn in the I/O pool
    link: DataLink
    interval_s: float
    log: logging.Logger
    agent: AgentInfo = field(default_factory=AgentInfo)

    async def read(self) -> ReadingT:
        """Read the driver once through ``call`` (awaited if async, else on the instance's lane)."""
        if self.driver is None:
            raise DriverError(f"instance {self.instance!r} has no driver")
        result = await self.call(self.driver.read)
        return cast(ReadingT, result)


class Plugin(Generic[OptionsT, ReadingT]):
    """Base class for plugin instances; subclass it as ``Plugin[MyOptions, Values]`` and
    override ``poll``."""

    def __init__(self, ctx: PluginContext[OptionsT, ReadingT]) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        """Called once after the driver is open, before the first poll."""

    async def poll(self) -> None:
        """One scheduled tick: read, compute, emit."""
        raise NotImplementedError

    async def close(self) -> None:
        """Called once on stop; release what ``start`` acquired."""

    async def command(self, name: str, args: Mapping[str, Any]) -> Any:
        """Answer an instance command (``cmd/...`` with ``instance``); raise UnknownCommand for
        a name this plugin does not answer, ValueError for bad arguments."""
        raise UnknownCommand(name)


@dataclass(frozen=True)
class PluginSpec(Generic[OptionsT, ReadingT]):
    """What a plugin package registers; generic over its options (``OptionsT``) and the reading
    type (``ReadingT``) it expects, inferred from ``factory`` (and checked against ``reading`` if given)."""

    name: str
    factory: Callable[[PluginContext[OptionsT, ReadingT]], Plugin[OptionsT, ReadingT]]
    options: type[OptionsT]
    requires: Capability | None  # the driver capability needed; None = no driver
    description: str = ""
    # Optional cross-field checks with the driver's type name; returns "key: problem" messages.
    check: Callable[[OptionsT, str | None], list[str]] | None = None
    # What the plugin emits on data/{instance}, from its options and the driver's declared
    # values; None = not declared (check-config then cannot check references to its values).
    values: Callable[[OptionsT, Sequence[ValueSpec]], Sequence[ValueSpec]] | None = None
    # The reading type the plugin expects (READING_TYPES[requires] or a subclass of it): lets a
    # type checker match ``factory``'s reading type to ``requires``.
    reading: type[ReadingT] | None = None
    # The options that name a value (alarm features, linked keys), for check-config.
    references: Callable[[OptionsT], Sequence[ValueRef]] | None = None
    contract_version: str = CONTRACT_VERSION  # the version this plugin was written for
    # Optional options of a typical instance: the generated reference shows its declared values.
    example: Mapping[str, Any] | None = None


def check_plugin_spec(obj: object, source: str) -> PluginSpec[Any, Any]:
    """Validate a loaded entry point; raise ContractError naming what is wrong and where."""
    if not isinstance(obj, PluginSpec):
        raise ContractError(f"{source}: expected a plugins.contract.PluginSpec, got {type(obj).__name__}")
    check_contract_version(obj.contract_version, CONTRACT_VERSION, source)
    if not valid_name(obj.name):
        raise ContractError(f"{source}: invalid plugin name {obj.name!r}")
    check_options_type(obj.options, source)
    if not callable(obj.factory):
        raise ContractError(f"{source}: factory is not callable")
    if isinstance(obj.factory, type) and not issubclass(obj.factory, Plugin):
        raise ContractError(f"{source}: factory class must subclass plugins.contract.Plugin")
    if obj.requires is not None and not isinstance(obj.requires, Capability):
        raise ContractError(f"{source}: requires must be a Capability or None")
    if obj.reading is not None:
        expected = READING_TYPES.get(obj.requires) if obj.requires is not None else None
        if expected is None or not (isinstance(obj.reading, type) and issubclass(obj.reading, expected)):
            want = expected.__name__ if expected is not None else "nothing (requires is None)"
            raise ContractError(f"{source}: reading {obj.reading!r} does not match requires: a driver gives {want}")
    for name in ("check", "values", "references"):
        if getattr(obj, name) is not None and not callable(getattr(obj, name)):
            raise ContractError(f"{source}: {name} must be callable or None")
    return obj


__all__ = [
    "CONTRACT_VERSION",
    "ENTRY_POINT_GROUP",
    "READING_TYPES",
    "AgentInfo",
    "AgentStats",
    "Capability",
    "CaptureService",
    "ChannelReading",
    "Clock",
    "ContractError",
    "DType",
    "DataLink",
    "Driver",
    "DriverError",
    "Emit",
    "EventFn",
    "MemoryStore",
    "Options",
    "Plugin",
    "PluginContext",
    "PluginSpec",
    "Quality",
    "RealClock",
    "Severity",
    "StateStore",
    "TemperatureReading",
    "ThermalFrame",
    "UnknownCommand",
    "ValueRef",
    "ValueSpec",
    "Values",
    "Waveform",
    "Writable",
    "check_plugin_spec",
]
