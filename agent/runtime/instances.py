"""The running instances: one supervised task each, started, stopped and reported by name, and
the effective config they run (the control swaps it after every apply)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from edge_agent.agent.config.declared_values import declared, declared_values
from edge_agent.agent.config.schema import Config, Instance
from edge_agent.agent.extensions import DriverFactory, Extensions
from edge_agent.agent.messaging.publisher import Publisher
from edge_agent.agent.runtime.supervisor import InstanceRunner, State
from edge_agent.drivers.contract import ValueSpec
from edge_agent.drivers.lanes import Lanes
from edge_agent.plugins.contract import AgentInfo, AgentStats, InstanceStats, Plugin

log = logging.getLogger("agent.runtime")

STATE_MIN_INTERVAL_S = 1.0  # retained config/state after instance state changes: at most once a second
NUMERIC_DTYPES = frozenset({"float32", "float64", "int"})


class RunningConfig:
    """The effective config that runs now, and the per-instance lookups other parts ask of it."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._plugins = self._plugin_names(config)

    @property
    def config(self) -> Config:
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        self._config = config
        self._plugins = self._plugin_names(config)  # asked for every published message: cached

    @staticmethod
    def _plugin_names(config: Config) -> dict[str, str]:
        return {i.name: i.plugin.name for i in config.instances}

    def plugin_of(self, name: str) -> str | None:
        """The plugin of an instance (None when it does not run)."""
        return self._plugins.get(name)

    def declared(self, name: str) -> tuple[ValueSpec, ...] | None:
        """The values an instance declares (None: it declares none, or it does not run)."""
        inst = self._instance(name)
        return None if inst is None else declared(inst)

    def _instance(self, name: str) -> Instance | None:
        return next((i for i in self._config.instances if i.name == name), None)

    def driver_keys(self, name: str) -> list[str] | None:
        """The numeric value keys the instance's driver declares (declared values API), None if unknown."""
        inst = self._instance(name)
        if inst is None or inst.driver is None or inst.driver.values is None:
            return None
        try:
            specs = inst.driver.values(inst.driver_options)
        except Exception:  # a third-party declaration that fails: fall back to what was read
            return None
        return [s.key for s in specs if str(s.dtype) in NUMERIC_DTYPES]


class Instances:
    """Starts and stops instances as named tasks; the host of the apply path and the control."""

    def __init__(
        self,
        running: RunningConfig,
        publisher: Publisher,
        lanes: Lanes,
        extensions: Extensions,
        *,
        agent: AgentInfo,
        build_driver: DriverFactory,
        publish_state: Callable[[bool], None],
        stats: Callable[[], AgentStats],
    ) -> None:
        self.running = running
        self.publisher = publisher
        self.lanes = lanes
        self.extensions = extensions
        self.agent = agent
        self.build_driver = build_driver  # in this process, or in a child (isolate = "process")
        self.runners: dict[str, tuple[InstanceRunner, asyncio.Task[None]]] = {}
        self.closing = False  # the agent stops: state changes are no longer republished
        self._publish_state = publish_state  # (status too?): republish the retained state (reporting.py)
        self._stats = stats
        self._state_pending = False
        self._state_sent = 0.0  # monotonic time of the last state-change republish

    # --- what the control and the apply path need (ControlHost) ----------------------------
    @property
    def config(self) -> Config:
        """The effective config that runs now."""
        return self.running.config

    @config.setter
    def config(self, config: Config) -> None:
        self.running.config = config

    def publish_state(self, *, status: bool = True) -> None:
        """Republish the retained status and config/state (agent/runtime/reporting.py)."""
        self._publish_state(status)

    def stats(self) -> AgentStats:
        """The agent's counters (agent/runtime/reporting.py)."""
        return self._stats()

    # --- start and stop -------------------------------------------------------------------------
    def make_runner(self, inst: Instance) -> InstanceRunner:
        return InstanceRunner(
            inst,
            self.publisher,
            self.lanes.get(inst.name),
            agent=self.agent,
            on_state=self._state_changed,
            driver_tap=self.extensions.wrap,
            build_driver=self.build_driver,
        )

    def start_instance(
        self, inst: Instance, runner: InstanceRunner | None = None, opened: tuple[Any, Plugin] | None = None
    ) -> InstanceRunner:
        """Start (or adopt an already opened) instance as a named task."""
        runner = runner or self.make_runner(inst)
        task = asyncio.get_running_loop().create_task(runner.run(opened), name=f"instance:{inst.name}")
        self.runners[inst.name] = (runner, task)
        specs = declared_values(inst)  # key, dtype, unit, writable: the wire types and DBIRTH
        self.publisher.declare(inst.name, specs)
        for listener in self.extensions.listeners:
            listener.instance_started(inst.name, specs)
        return runner

    async def stop_instances(self, names: list[str], *, timeout_s: float = 2.0) -> None:
        """Cancel instances and wait (bounded) for their drivers to close."""
        tasks = []
        for name in names:
            entry = self.runners.pop(name, None)
            if entry is not None:
                entry[1].cancel()
                tasks.append(entry[1])
                self.publisher.link.forget(name)
                self.lanes.release(name)  # the thread ends when its last call returns (at once if idle)
                for listener in self.extensions.listeners:
                    listener.instance_stopped(name)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    async def stop_all(self, *, timeout_s: float) -> None:
        """The agent stops: every instance, with no more state republishing."""
        self.closing = True
        await self.stop_instances(list(self.runners), timeout_s=timeout_s)

    # --- reported state ---------------------------------------------------------------------------
    def _state_changed(self, runner: InstanceRunner) -> None:
        """Republish the retained config/state after an instance state change: coalesced, at most
        once per STATE_MIN_INTERVAL_S (a value flapping between good and bad must not flood the
        broker with retained messages), and always with the latest states."""
        if self.runners.get(runner.inst.name, (None,))[0] is not runner or self._state_pending:
            return
        self._state_pending = True
        wait = max(0.0, self._state_sent + STATE_MIN_INTERVAL_S - time.monotonic())
        asyncio.get_running_loop().call_later(wait, self._flush_state)

    def _flush_state(self) -> None:
        self._state_pending = False
        self._state_sent = time.monotonic()
        if not self.closing:
            self._publish_state(False)  # the status carries no instance state

    def states(self) -> list[State]:
        return [runner.state for runner, _ in self.runners.values()]

    def instance_states(self) -> dict[str, dict[str, Any]]:
        """Each instance's plugin, state, since and why (and its last error while failing)."""
        out: dict[str, dict[str, Any]] = {}
        for name, (runner, _) in self.runners.items():
            st: dict[str, Any] = {"plugin": runner.inst.plugin.name, **runner.info.as_dict()}
            if runner.state in (State.BACKOFF, State.HUNG) and runner.stats.last_error:
                st["error"] = runner.stats.last_error
            out[name] = st
        return out

    def instance_stats(self) -> dict[str, InstanceStats]:
        return {name: runner.stats.as_stats(runner.state) for name, (runner, _) in self.runners.items()}
