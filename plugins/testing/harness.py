"""A test harness for plugins: run a plugin with a driver and record what it emits, no broker.

Used by our own tests and offered to integrators::

    h = Harness(SPEC, options={"machine_group": 2}, driver=my_driver)
    await h.start(); await h.poll(); h.emitted[-1].values

(the plugin conformance kit, a class to subclass, is :class:`edge_agent.plugins.testing.PluginConformance`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from edge_agent.drivers.contract import Driver
from edge_agent.drivers.lanes import Lane, deadline_for
from edge_agent.drivers.testing.clock import ManualClock
from edge_agent.plugins.contract import AgentInfo, Plugin, PluginContext, PluginSpec, Severity


@dataclass
class Emitted:
    values: dict[str, Any]
    quality: dict[str, str]
    ts_ms: int | None


@dataclass
class Event:
    kind: str
    message: str
    severity: Severity
    fields: dict[str, Any]


@dataclass
class StaticLink:
    """A DataLink with values set by the test: ``link.values[("tacho", "rpm")] = 1797``."""

    values: dict[tuple[str, str], Any] = field(default_factory=dict)

    def latest(self, instance: str, key: str) -> tuple[Any, float] | None:
        v = self.values.get((instance, key))
        return None if v is None else (v, 0.0)


class Harness:
    """Build a plugin instance the way the runtime does, with recording emit/event."""

    def __init__(
        self,
        spec: PluginSpec,
        *,
        options: Mapping[str, Any] | None = None,
        driver: Driver | None = None,
        clock: Any = None,
        link: Any = None,
        interval_s: float = 1.0,
        instance: str = "test",
        agent: AgentInfo | None = None,
        call: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        self.emitted: list[Emitted] = []
        self.events: list[Event] = []
        self.clock = clock or ManualClock()
        self.driver = driver
        self.interval_s = interval_s
        # the runtime's rules exactly: the driver's calls on a lane of their own, with its deadlines
        self.lane = Lane(f"harness:{instance}")
        opts = msgspec.convert(dict(options or {}), spec.options)
        self.ctx = PluginContext(
            instance=instance,
            options=opts,
            driver=driver,
            emit=self._emit,
            event=self._event,
            clock=self.clock,
            call=call or self.call,
            link=link or StaticLink(),
            interval_s=interval_s,
            log=logging.getLogger(f"plugin.{instance}"),
            agent=agent or AgentInfo(),
        )
        self.plugin: Plugin = spec.factory(self.ctx)

    def _emit(
        self, values: Mapping[str, Any], quality: Mapping[str, str] | None = None, *, ts_ms: int | None = None
    ) -> None:
        self.emitted.append(Emitted(dict(values), dict(quality or {}), ts_ms))

    def _event(self, kind: str, message: str, severity: Severity = Severity.WARNING, **fields: Any) -> None:
        self.events.append(Event(kind, message, Severity(severity), dict(fields)))

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``ctx.call`` as the runtime does it: on the instance's lane, with the driver's deadline."""
        deadline = deadline_for(self.driver, getattr(fn, "__name__", "read"), self.interval_s)
        return await self.lane.call(fn, *args, deadline_s=deadline)

    async def start(self) -> None:
        if self.driver is not None:
            await self.ctx.call(self.driver.open)
        await self.plugin.start()

    async def poll(self, times: int = 1, advance_s: float | None = None) -> None:
        for _ in range(times):
            await self.plugin.poll()
            if advance_s and isinstance(self.clock, ManualClock):
                self.clock.advance(advance_s)

    async def close(self) -> None:
        await self.plugin.close()
        if self.driver is not None:
            await self.ctx.call(self.driver.close)
        self.lane.release()


__all__ = ["Emitted", "Event", "Harness", "ManualClock", "StaticLink"]
