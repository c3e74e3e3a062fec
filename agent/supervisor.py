"""One supervised task per plugin instance: drift-free schedule, restart with backoff.

Ticks fall at start + k x interval_s on the monotonic clock. A poll that overruns skips the
ticks it missed (counted in ``skipped_ticks``) instead of piling them up. An exception escaping a
poll becomes an event on ``event/{instance}`` and a restart after a jittered exponential
backoff (1 s doubling up to 60 s, reset after a healthy minute); other instances never notice.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import math
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from edge_agent.agent.config import Instance
from edge_agent.agent.publisher import Publisher
from edge_agent.agent.session import backoff_delays
from edge_agent.plugins.contract import AgentInfo, Plugin, PluginContext, RealClock, Severity

log = logging.getLogger("agent.supervisor")


class State(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class InstanceStats:
    polls: int = 0
    skipped_ticks: int = 0
    errors: int = 0
    restarts: int = 0
    last_error: str = ""


def make_call(executor: Executor) -> Callable[..., Awaitable[Any]]:
    """Await coroutine functions on the loop; run blocking ones in the bounded pool."""

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        result = await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        if inspect.isawaitable(result):
            return await result
        return result

    return call


class InstanceRunner:
    """Runs one instance for as long as its task lives."""

    def __init__(
        self,
        inst: Instance,
        publisher: Publisher,
        call: Callable[..., Awaitable[Any]],
        *,
        agent: AgentInfo | None = None,
        backoff: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self.inst = inst
        self.publisher = publisher
        self.call = call
        self.agent = agent or AgentInfo()
        self.backoff = backoff
        self.state = State.STARTING
        self.stats = InstanceStats()
        self.first_good = asyncio.Event()  # set by the first good-quality value (the proof of a push)
        self.last_bad_quality = ""
        self.plugin: Plugin | None = None
        self.log = logging.getLogger(f"instance.{inst.name}")

    def _emit(
        self, values: Mapping[str, Any], quality: Mapping[str, str] | None = None, *, ts_ms: int | None = None
    ) -> None:
        self.publisher.data(self.inst.name, values, quality, ts_ms, self.inst.qos)
        if not self.first_good.is_set():
            bad = quality or {}
            if any(bad.get(k, "good") == "good" for k in values):
                self.first_good.set()
            elif bad:
                self.last_bad_quality = "quality " + ", ".join(sorted({str(q) for q in bad.values()}))

    def _event(self, kind: str, message: str, severity: Severity = Severity.WARNING, **fields: Any) -> None:
        self.publisher.event(self.inst.name, kind, message, Severity(severity), fields, self.inst.qos)

    def context(self, driver: Any) -> PluginContext:
        """The PluginContext this instance's plugin gets."""
        return PluginContext(
            instance=self.inst.name,
            options=self.inst.options,
            driver=driver,
            emit=self._emit,
            event=self._event,
            clock=RealClock(),
            call=self.call,
            link=self.publisher.link,
            interval_s=self.inst.interval_s,
            log=self.log,
            agent=self.agent,
        )

    async def open(self) -> tuple[Any, Plugin]:
        """Build and open the driver and start the plugin (the prepare step of a config push)."""
        driver = None
        if self.inst.driver is not None:
            driver = self.inst.driver.factory(self.inst.driver_options)
            try:
                await self.call(driver.open)
            except BaseException:
                await self._close_driver(driver)
                raise
        plugin = self.inst.plugin.factory(self.context(driver))
        try:
            await plugin.start()
        except BaseException:
            await self._close_driver(driver)
            raise
        return driver, plugin

    async def _close_driver(self, driver: Any) -> None:
        if driver is None:
            return
        try:
            await self.call(driver.close)
        except Exception as exc:  # closing must never mask the original problem
            self.log.warning("closing driver failed: %s", exc)

    async def run(self, opened: tuple[Any, Plugin] | None = None) -> None:
        """Run until cancelled; restart after failures with jittered backoff."""
        delays = backoff_delays(*self.backoff)
        while True:
            started = time.monotonic()
            try:
                if opened is None:
                    opened = await self.open()
                driver, self.plugin = opened
                opened = None
                try:
                    await self._ticks(self.plugin)
                finally:
                    await self._shutdown(driver, self.plugin)
            except asyncio.CancelledError:
                self.state = State.STOPPED
                raise
            except Exception as exc:
                opened = None
                if time.monotonic() - started > 60:
                    delays = backoff_delays(*self.backoff)
                await self._failed(exc, next(delays))

    async def close(self, driver: Any, plugin: Plugin) -> None:
        """Close an instance that was opened but never run (a push rolled back before the swap)."""
        await self._shutdown(driver, plugin)

    async def _shutdown(self, driver: Any, plugin: Plugin) -> None:
        try:
            await plugin.close()
        except Exception as exc:
            self.log.warning("plugin close failed: %s", exc)
        await self._close_driver(driver)

    async def _failed(self, exc: Exception, delay_s: float) -> None:
        self.state = State.RESTARTING
        self.stats.errors += 1
        self.stats.restarts += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        self._event(
            "instance_error",
            f"{self.stats.last_error}; restarting in {delay_s:.1f} s",
            Severity.ALARM,
            restart_in_s=round(delay_s, 2),
            at=f"{where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno}" if where else "",
        )
        await asyncio.sleep(delay_s)

    async def _ticks(self, plugin: Plugin) -> None:
        loop = asyncio.get_running_loop()
        interval = self.inst.interval_s
        start = loop.time()
        k = 0
        timeout = max(30.0, 10 * interval)
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the poll finishes, and the instance would then never stop.
            async with asyncio.timeout(timeout):
                await plugin.poll()
            self.stats.polls += 1
            self.state = State.RUNNING
            now = loop.time()
            due = max(k + 1, math.ceil((now - start) / interval))
            self.stats.skipped_ticks += due - (k + 1)
            k = due
            await asyncio.sleep(max(0.0, start + k * interval - loop.time()))
