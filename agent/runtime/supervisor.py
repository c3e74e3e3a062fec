"""One supervised task per plugin instance: its own lane, drift-free ticks, faults as data.

Ticks fall at start + k x interval_s on the monotonic clock; a poll that overruns skips the ticks it
missed (``skipped_ticks``). The instance's blocking driver calls run on its own lane
(:mod:`edge_agent.drivers.lanes`) with a deadline. While the instance cannot poll (its driver is
stuck in a call, ``open()`` failed, or it waits out a backoff after an error), it keeps its
cadence with its values as null and a quality code, so a dashboard shows *why* there is no number.

Every state change (:class:`State`) is reported through ``on_state``: the runtime republishes the
retained ``config/state`` from it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from edge_agent.agent.backoff import backoff_delays
from edge_agent.agent.config.declared_values import WILDCARD, declared
from edge_agent.agent.config.schema import Instance
from edge_agent.agent.extensions import DriverFactory
from edge_agent.agent.maintenance.driver_tap import DriverTap
from edge_agent.agent.messaging.publisher import Publisher, now_ms
from edge_agent.agent.runtime.instance_state import (
    InstanceCounters,
    OpenFailed,
    PollHung,
    State,
    StateInfo,
    describe,
    nulls,
)
from edge_agent.agent.runtime.read_faults import ReadFaults
from edge_agent.agent.runtime.value_check import InstanceGuards
from edge_agent.drivers.dotted_keys import flatten
from edge_agent.drivers.errors import DriverError
from edge_agent.drivers.lanes import DriverHung, Lane, deadline_for, where
from edge_agent.plugins.contract import AgentInfo, Plugin, PluginContext, RealClock, Severity

log = logging.getLogger("agent.supervisor")

HEALTHY_RESET_S = 60.0  # a healthy minute resets the backoff


def in_process(inst: Instance) -> Any:
    """The instance's driver, built in this process (the default DriverFactory)."""
    assert inst.driver is not None
    return inst.driver.factory(inst.driver_options)


class InstanceRunner:
    """Runs one instance for as long as its task lives."""

    def __init__(
        self,
        inst: Instance,
        publisher: Publisher,
        lane: Lane,
        *,
        agent: AgentInfo | None = None,
        backoff: tuple[float, float] = (1.0, 60.0),
        on_state: Callable[[InstanceRunner], None] | None = None,
        value_keys: tuple[str, ...] = (),
        driver_tap: Callable[[str, Any], Any] | None = None,
        build_driver: DriverFactory = in_process,
    ) -> None:
        self.inst = inst
        self.publisher = publisher
        self.lane = lane
        self.agent = agent or AgentInfo()
        self.driver_tap = driver_tap  # the registered DriverWrappers (maintenance: calibration, capture rings)
        self.build_driver = build_driver  # in this process, or in a child (isolate = "process")
        self.backoff = backoff
        self.on_state = on_state
        # the keys nulled while the instance waits: its declared values, else every key it emitted
        declared_keys = [v.key for v in declared(inst) or () if WILDCARD not in v.key]
        self.value_keys: list[str] = list(value_keys) or declared_keys
        self._learn_keys = not self.value_keys
        self._top_keys: set[str] = set()
        self.info = StateInfo(State.STARTING, now_ms(), "opening the driver")
        self.stats = InstanceCounters()
        self.first_good = asyncio.Event()  # set by the first good-quality value (the proof of a push)
        self.last_bad_quality = ""
        self.plugin: Plugin | None = None
        self.driver: Any = None
        self._built_driver: Any = None  # the driver as built, before the wrappers (tracebacks name its frames)
        self.log = logging.getLogger(f"instance.{inst.name}")
        self._fault_since: float | None = None
        self._emitted_bad = False
        # declared values enforced at both seams (agent/runtime/value_check.py)
        self.guards = InstanceGuards(inst, self._driver_name(), self._guard_event)
        self.reads = ReadFaults(inst.options)  # a sensor failing from power-up: its nulls, its fault fields
        self._emitted = False  # the plugin emitted in this poll

    # --- state -----------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self.info.state

    def set_state(self, state: State, why: str = "") -> None:
        """Record a state change (same state, new reason counts too) and tell the runtime."""
        if (state, why) == (self.info.state, self.info.why):
            return
        self.info = StateInfo(state, now_ms() if state != self.info.state else self.info.since_ms, why)
        if self.on_state is not None:
            self.on_state(self)

    # --- what the plugin gets --------------------------------------------------------------
    def _emit(
        self, values: Mapping[str, Any], quality: Mapping[str, str] | None = None, *, ts_ms: int | None = None
    ) -> None:
        values, quality = self.guards.emit.check(values, quality)
        if not values:
            return
        if self._learn_keys and not values.keys() <= self._top_keys:  # cheap: new top-level keys only
            self._top_keys |= values.keys()
            self.value_keys += [k for k in flatten(values) if k not in set(self.value_keys)]
        self._emitted_bad = self._emitted_bad or bool(quality)
        self._emitted = True
        self.publisher.data(self.inst.name, values, quality, ts_ms, self.inst.qos)
        if not self.first_good.is_set():
            bad = quality or {}
            if any(bad.get(k, "good") == "good" for k in values):
                self.first_good.set()
            elif bad:
                self.last_bad_quality = "quality " + ", ".join(sorted({str(q) for q in bad.values()}))

    def _event(self, kind: str, message: str, severity: Severity = Severity.WARNING, **fields: Any) -> None:
        if kind == "sensor_fault" and "count" not in fields:  # a read fault: one alarm per episode, full fields
            if self.reads.hung or self.lane.stuck is not None:
                return  # a hang: driver_hung is its alarm
            self.stats.faults += 1
            self.reads.alarmed = True
            fields = {"count": self.stats.faults, "at": self.reads.at} | fields
        elif kind == "sensor_ok":
            self.reads.alarmed = False
        self.publisher.event(self.inst.name, kind, message, Severity(severity), fields, self.inst.qos)

    def _guard_event(self, kind: str, message: str, fields: dict[str, Any]) -> None:
        self._event(kind, message, Severity.WARNING, **fields)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``ctx.call``: run ``fn`` on this instance's lane with the driver's deadline for it."""
        method = self._method_of(fn)
        deadline = deadline_for(self.driver, method, self.inst.interval_s)
        try:
            result = await self.lane.call(fn, *args, deadline_s=deadline, name=f"{method}()")
        except DriverError as exc:
            if method == "read":
                self.reads.failed(exc)
            raise
        finally:
            self.guards.drain()
        if method == "read" and self.reads.succeeded():  # the agent raised this episode's alarm: it ends it
            self._event("sensor_ok", f"driver {self._driver_name()} reads again", Severity.INFO)
        return result

    def _method_of(self, fn: Callable[..., Any]) -> str:
        """``open``/``read``/``close`` when ``fn`` is that method of the driver (wrapped or not)."""
        for method in ("read", "open", "close"):
            if self.driver is not None and fn == getattr(self.driver, method, None):
                return method
        return str(getattr(fn, "__name__", "call"))

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

    # --- life cycle --------------------------------------------------------------------------
    async def open(self) -> tuple[Any, Plugin]:
        """Build and open the driver and start the plugin (the prepare step of a config push)."""
        self.set_state(State.STARTING, "opening the driver")
        driver = self.driver = self._built_driver = None
        if self.inst.driver is not None:
            driver = self.driver = self._built_driver = self.build_driver(self.inst)
            # innermost: calibration, the capture rings, the plugin and every output see checked values
            driver = self.driver = DriverTap(self.inst.name, driver, self.guards.check_reading)
            if self.driver_tap is not None:
                driver = self.driver = self.driver_tap(self.inst.name, driver)
            try:
                await self.call(driver.open)
            except DriverHung:
                await self._close_driver(driver)
                raise
            except Exception as exc:
                await self._close_driver(driver)
                raise OpenFailed(exc) from exc
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
        if self.lane.stuck is not None:  # never two calls at once: close after the stuck one returns
            self.lane.defer(driver.close)
            return
        try:
            await self.call(driver.close)
        except Exception as exc:  # closing must never mask the original problem
            self.log.warning("closing driver failed: %s", describe(exc))

    async def run(self, opened: tuple[Any, Plugin] | None = None) -> None:
        """Run until cancelled: poll, wait out a stuck call, retry a failed open with backoff."""
        delays = backoff_delays(*self.backoff)
        try:
            while True:
                started = time.monotonic()
                try:
                    await self._wait_lane()
                    if opened is None:
                        opened = await self.open()
                    self.driver, self.plugin = opened
                    opened = None
                    self._recovered()
                    try:
                        await self._ticks(self.plugin)
                    finally:
                        await self._shutdown(self.driver, self.plugin)
                except DriverHung as exc:
                    opened = None
                    self._hung(exc)
                    if self.lane.stuck is None:  # an async call cancelled at its deadline: back off, retry
                        await self._failed(exc, next(delays), event=False)
                except Exception as exc:
                    opened = None
                    if time.monotonic() - started > HEALTHY_RESET_S:
                        delays = backoff_delays(*self.backoff)
                    await self._failed(exc, next(delays))
        finally:
            self.set_state(State.STOPPED, "stopped")

    async def close(self, driver: Any, plugin: Plugin) -> None:
        """Close an instance that was opened but never run (a push rolled back before the swap)."""
        await self._shutdown(driver, plugin)

    async def _shutdown(self, driver: Any, plugin: Plugin) -> None:
        try:
            await plugin.close()
        except Exception as exc:
            self.log.warning("plugin close failed: %s", describe(exc))
        await self._close_driver(driver)

    # --- faults as data --------------------------------------------------------------------
    def _hung(self, exc: DriverHung) -> None:
        """A call passed its deadline: one ``driver_hung`` per episode, then wait for it in _wait_lane."""
        stuck = self.lane.stuck
        if stuck is None:  # an async call was cancelled at its deadline: nothing left running
            self._event("driver_hung", f"driver {self._driver_name()}: {exc}", Severity.ALARM, **self._hung_fields(exc))
            return
        if not stuck.reported:
            stuck.reported = True
            self.stats.hung += 1
            share = stuck.cpu_share()
            busy = share is not None and share > 0.1  # a thread blocked in a system call uses ~0
            msg = (
                f"driver {self._driver_name()}: {stuck.call} did not return within {stuck.deadline_s:g} s"
                + (f' and is computing ({share:.0%} of a core): consider isolate = "process"' if busy else "")
                + "; its values are null with quality timeout until it does"
            )
            fields = self._hung_fields(exc) | ({"cpu": round(share, 2)} if share is not None else {})
            self._event("driver_hung", msg, Severity.ALARM, **fields)

    def _hung_fields(self, exc: DriverHung) -> dict[str, Any]:
        driver = self.inst.driver.name if self.inst.driver is not None else ""
        return {"driver": driver, "call": exc.call, "for_s": round(exc.waited_s, 1), "at": exc.at}

    async def _wait_lane(self) -> None:
        """Hold the cadence with null values while the lane is stuck; report when the call returns."""
        stuck = self.lane.stuck
        if stuck is None:
            return
        self.set_state(
            State.HUNG,
            f"{stuck.call} of driver {self._driver_name()} passed its {stuck.deadline_s:g} s deadline; "
            "no new call until it returns",
        )
        await self._hold("timeout", lambda: self.lane.stuck is None)
        self._event(
            "driver_recovered",
            f"driver {self._driver_name()}: {stuck.call} returned after {stuck.for_s():.1f} s; reopening it",
            Severity.INFO,
            call=stuck.call,
            hung_s=round(stuck.for_s(), 1),
        )

    async def _failed(self, exc: Exception, delay_s: float, *, event: bool = True) -> None:
        """open() failed (a sensor fault) or a poll raised (an instance error): nulls, event, backoff."""
        cause = exc.cause if isinstance(exc, OpenFailed) else exc
        self.stats.errors += 1
        self.stats.restarts += 1
        self.stats.last_error = describe(cause)
        quality = getattr(cause, "quality", "device_error") if isinstance(cause, DriverError) else "device_error"
        at = cause.at if hasattr(cause, "at") else where(cause.__traceback__)  # isolated: where in the child
        if isinstance(exc, OpenFailed):
            what = f"open() of driver {self._driver_name()} failed: {describe(cause)}"
            if self._fault_since is None:
                self._fault_since = time.monotonic()
                self.stats.faults += 1
                self._event("sensor_fault", what, Severity.ALARM, quality=quality, count=self.stats.faults, at=at)
        elif isinstance(cause, DriverHung):
            what = f"driver {self._driver_name()}: {cause}"
        else:
            what = f"{self._failed_call(cause)} raised {describe(cause)}"
        if event and not isinstance(exc, OpenFailed):
            self._event(
                "instance_error",
                f"{what}; restarting in {delay_s:.1f} s",
                Severity.ALARM,
                restart_in_s=round(delay_s, 2),
                at=at,
            )
        self.set_state(State.BACKOFF, f"{what}; retrying in {delay_s:.1f} s")
        end = time.monotonic() + delay_s
        await self._hold(quality, lambda: time.monotonic() >= end)

    def _failed_call(self, exc: BaseException) -> str:
        """Which call failed, in words: ``read() of driver 'sim'`` or ``poll() of plugin 'values'``."""
        mine = {id(self.driver), id(self._built_driver)} - {id(None)}
        tb, found = exc.__traceback__, ""
        while tb is not None:  # the outermost open/read/close frame of the driver (or the one it wraps)
            if id(tb.tb_frame.f_locals.get("self")) in mine and tb.tb_frame.f_code.co_name in ("open", "read", "close"):
                found = found or tb.tb_frame.f_code.co_name
            tb = tb.tb_next
        if found:
            return f"{found}() of driver {self._driver_name()}"
        return f"poll() of plugin {self.inst.plugin.name!r}"

    def _recovered(self) -> None:
        if self._fault_since is not None:
            down = time.monotonic() - self._fault_since
            self._fault_since = None
            self._event(
                "sensor_ok",
                f"driver {self._driver_name()} opened after {down:.1f} s",
                Severity.INFO,
                down_s=round(down, 1),
            )

    async def _hold(self, quality: str, done: Callable[[], bool]) -> None:
        """Until ``done()``: every interval, the values as null with ``quality`` (no driver call)."""
        interval = self.inst.interval_s
        next_emit = time.monotonic()
        while not done():
            now = time.monotonic()
            if now >= next_emit:
                self._emit_nulls(quality)
                next_emit = max(next_emit + interval, now)
            await asyncio.sleep(min(0.05, max(0.0, next_emit - now)))  # notice done() within 50 ms

    def _emit_nulls(self, quality: str) -> None:
        keys = self.value_keys
        if keys:  # the link keeps the last real values: other instances must not read None as a number
            topic = self.publisher.topics.data(self.inst.name)
            q = dict.fromkeys(keys, quality)
            self.publisher.outbox.put(self.publisher.message(topic, nulls(keys), quality=q, qos=self.inst.qos))

    def _read_failed_nulls(self) -> None:
        """A read failed and the plugin said nothing (it knows no keys yet): the declared keys as
        null, and the episode's sensor_fault when the plugin raised none."""
        if self.reads.error is None or self.reads.hung:
            return
        if not self.reads.alarmed:
            self._event(
                "sensor_fault", self.reads.why(self._driver_name()), Severity.ALARM, quality=self.reads.quality()
            )
            self.reads.by_agent = True
        if self._emitted or not self.value_keys:
            return
        quality = self.reads.nulls_due(time.monotonic())
        if quality is not None:
            self._emit(nulls(self.value_keys), dict.fromkeys(self.value_keys, quality))

    def _poll_state(self) -> tuple[State, str]:
        """After a poll: running, or degraded with why (a failed read, values not as declared, not good)."""
        if self.reads.error is not None:
            return State.DEGRADED, self.reads.why(self._driver_name())
        bad = self.guards.bad_keys()
        if bad:
            shown = ", ".join(bad[:5]) + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
            return State.DEGRADED, f"values not as declared (quality bad_value): {shown}"
        if self._emitted_bad:
            return State.DEGRADED, "some values are not good"
        return State.RUNNING, ""

    def _driver_name(self) -> str:
        return repr(self.inst.driver.name) if self.inst.driver is not None else "(none)"

    async def _ticks(self, plugin: Plugin) -> None:
        loop = asyncio.get_running_loop()
        interval = self.inst.interval_s
        start = loop.time()
        k = 0
        timeout = max(30.0, 10 * interval)
        while True:
            if self.lane.stuck is not None:  # the plugin swallowed a DriverHung: stop calling the driver
                stuck = self.lane.stuck
                raise DriverHung(f"{stuck.call} is stuck", call=stuck.call, waited_s=stuck.for_s(), at=stuck.at())
            # ReportsFailure by getattr: a runtime Protocol isinstance costs ~30 us, every tick
            failure = getattr(self.driver, "failure", None)
            if failure is not None:
                raise failure  # the isolated driver's process died: reopen (a fresh one)
            self._emitted_bad = self._emitted = False
            self.reads.start_poll()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                # arrives as the poll finishes, and the instance would then never stop.
                async with asyncio.timeout(timeout):
                    await plugin.poll()
            except TimeoutError as exc:
                if isinstance(exc, DriverError):
                    raise
                raise PollHung(
                    f"poll() of plugin {self.inst.plugin.name!r} did not finish within {timeout:g} s"
                ) from None
            self.stats.polls += 1
            self._read_failed_nulls()
            self.set_state(*self._poll_state())
            now = loop.time()
            due = max(k + 1, math.ceil((now - start) / interval))
            self.stats.skipped_ticks += due - (k + 1)
            k = due
            await asyncio.sleep(max(0.0, start + k * interval - loop.time()))
