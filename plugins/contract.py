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
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgspec
from edge_agent.drivers.contract import Capability, Driver
from edge_agent.drivers.errors import DriverError

ENTRY_POINT_GROUP = "edge_agent.plugins"

T = TypeVar("T")


class Severity(enum.StrEnum):
    """Event severities, mapped onto syslog levels in logs."""

    INFO = "info"
    WARNING = "warning"
    ALARM = "alarm"
    CRITICAL = "critical"


class Options(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for a plugin's options (the ``[instances.options]`` table)."""


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
class PluginContext:
    """Everything a plugin instance may use; built by the runtime, or by tests directly."""

    instance: str
    options: Any  # an instance of the plugin's Options subclass
    driver: Driver | None
    emit: Emit
    event: EventFn
    clock: Clock
    call: Callable[..., Awaitable[Any]]  # await ctx.call(fn, *args): runs fn in the I/O pool
    link: DataLink
    interval_s: float
    log: logging.Logger
    # Optional per-plugin extension point: named commands this instance answers (capture...).
    extras: Mapping[str, Any] | None = None

    async def read(self) -> Any:
        """Read the driver once: awaited directly if async, else in the bounded thread pool."""
        if self.driver is None:
            raise DriverError(f"instance {self.instance!r} has no driver")
        result = await self.call(self.driver.read)
        return result


class Plugin:
    """Base class for plugin instances; subclass it and override ``poll``."""

    def __init__(self, ctx: PluginContext) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        """Called once after the driver is open, before the first poll."""

    async def poll(self) -> None:
        """One scheduled tick: read, compute, emit."""
        raise NotImplementedError

    async def close(self) -> None:
        """Called once on stop; release what ``start`` acquired."""

    async def command(self, name: str, args: Mapping[str, Any]) -> Any:
        """Answer an instance command (``cmd/...`` with ``instance``); unknown -> KeyError."""
        raise KeyError(name)


@dataclass(frozen=True)
class PluginSpec:
    """What a plugin package registers."""

    name: str
    factory: Callable[[PluginContext], Plugin]
    options: type[Options]
    requires: Capability | None  # the driver capability needed; None = no driver
    description: str = ""
    # Optional cross-field checks with the driver's type name; returns "key: problem" messages.
    check: Callable[[Any, str | None], list[str]] | None = None


def check_plugin_spec(obj: object, source: str) -> PluginSpec:
    """Validate a loaded entry point; raise TypeError naming what is wrong and where."""
    if not isinstance(obj, PluginSpec):
        raise TypeError(f"{source}: expected a plugins.contract.PluginSpec, got {type(obj).__name__}")
    if not obj.name or not obj.name.replace("_", "").replace("-", "").isalnum():
        raise TypeError(f"{source}: invalid plugin name {obj.name!r}")
    if not (isinstance(obj.options, type) and issubclass(obj.options, msgspec.Struct)):
        raise TypeError(f"{source}: options must be a msgspec.Struct subclass")
    if not callable(obj.factory):
        raise TypeError(f"{source}: factory is not callable")
    if isinstance(obj.factory, type) and not issubclass(obj.factory, Plugin):
        raise TypeError(f"{source}: factory class must subclass plugins.contract.Plugin")
    if obj.requires is not None and not isinstance(obj.requires, Capability):
        raise TypeError(f"{source}: requires must be a Capability or None")
    return obj
