"""The runtime: wires config, registry, outbox, publisher, MQTT session and the supervised
instances, and handles signals (TERM/INT stop, HUP reload)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from edge_agent.agent import __version__
from edge_agent.agent.config.declared_values import declared
from edge_agent.agent.config.layers import PushedLayer
from edge_agent.agent.config.registry import Registry
from edge_agent.agent.config.schema import Config, Instance
from edge_agent.agent.history.service import History
from edge_agent.agent.maintenance.service import Maintenance
from edge_agent.agent.messaging.mqtt_session import Handler, MqttSession, SessionOptions, read_password
from edge_agent.agent.messaging.outbox import MemoryOutbox, Message, Outbox, Priority
from edge_agent.agent.messaging.publisher import Publisher, Topics, now_ms
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.agent.remote.commands import Commands
from edge_agent.agent.remote.config_push import RemoteConfig
from edge_agent.agent.runtime.control import AgentControl
from edge_agent.agent.runtime.sd_notify import Notifier, watchdog_task
from edge_agent.agent.runtime.supervisor import InstanceRunner, State
from edge_agent.drivers.contract import ValueSpec
from edge_agent.drivers.lanes import Lanes
from edge_agent.plugins.contract import AgentInfo, AgentStats, InstanceStats, Plugin, Severity

if TYPE_CHECKING:
    from edge_agent.agent.remote.commands import AgentCommandHandler

log = logging.getLogger("agent.runtime")

GC_SETTLE_S = 15.0  # after start: lazy imports done, every instance has polled


def settle_gc() -> None:
    """Put every object alive now out of the garbage collector's sight (``gc.freeze``).

    A full collection walks all module-level objects with the GIL held: 15-17 ms in the reference
    plant on the test VM, several times that on a Pi. That is longer than the 6 ms an ADXL345 FIFO
    at 3.2 kHz can wait for its drain thread, and it delays every 1-Hz value. What start-up left
    behind lives for the whole run anyway; later collections then only walk newer objects.
    """
    gc.freeze()
    log.debug("gc: %d start-up objects frozen", gc.get_freeze_count())


STATE_MIN_INTERVAL_S = 1.0  # retained config/state after instance state changes: at most once a second


def hard_exit(code: int) -> None:
    """Leave now: flush the logs and skip everything else (stuck threads, atexit handlers)."""
    logging.shutdown()
    os._exit(code)


class Runtime:
    """One agent process: ``await Runtime(cfg, reg).run()`` returns the exit code."""

    def __init__(
        self,
        config: Config,
        registry: Registry,
        *,
        config_path: Path | None = None,
        url_override: str | None = None,
        file_config: Config | None = None,
        layer: PushedLayer | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.config_path = config_path
        self.url = url_override or config.mqtt.url
        self.topics = Topics(config.mqtt.prefix, config.agent_id)
        self.started_ms = now_ms()
        self.started_mono = time.monotonic()
        self.runners: dict[str, tuple[InstanceRunner, asyncio.Task[None]]] = {}
        self.stop_event = asyncio.Event()
        self.first_publish_s: float | None = None
        self.applied_ms = now_ms()
        self.notifier = Notifier()
        self._background: list[asyncio.Task[None]] = []
        # the one owner of file + pushed layers; remote config and commands talk only to it
        self.control = AgentControl(
            self, registry, file_config=file_config or config, layer=layer or PushedLayer(), config_path=config_path
        )
        self.stopped_clean = False
        self.lanes = Lanes(config.agent.max_lane_threads)
        self._state_pending = False
        self._state_sent = 0.0  # monotonic time of the last state-change republish
        self.sparkplug: Any = None
        self.remote: RemoteConfig | None = None
        self.commands: Commands | None = None
        self.history: History | None = None

    # --- life cycle -------------------------------------------------------------------
    async def run(self) -> int:
        state_dir = Path(self.config.agent.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.seqs = SeqStore(state_dir / "seq.sqlite")
        self.outbox: Outbox = self._make_outbox(state_dir)
        self.publisher = Publisher(
            self.topics, self.seqs, self.outbox, single_float=self.config.mqtt.float_precision == "single"
        )
        self.maintenance = Maintenance(state_dir, self.publisher, self._plugin_of, self._driver_keys)
        self.publisher.hook = self.maintenance
        self.history = self._make_history(state_dir)
        # built once: the session, Sparkplug's session and SIGHUP all see the same handlers
        self.session = MqttSession(self._session_options(self._subscriptions()), self.outbox)
        self._install_signals()
        self.sparkplug = self._make_sparkplug(state_dir)
        async with self.session:
            if self.sparkplug is not None:
                await self.sparkplug.__aenter__()
            if not self.seqs.was_clean:
                self.publisher.event(
                    "agent", "unclean_restart", "the previous run did not stop cleanly", Severity.WARNING, {}
                )
            if self.seqs.fault:
                self.publisher.event("agent", "seq_store_fault", self.seqs.fault, Severity.CRITICAL, {})
            for why in self.control.layer.faults:  # a stored state file moved aside (docs/security.md)
                self.publisher.event("agent", "state_quarantined", why, Severity.CRITICAL, {})
            self.seqs.on_fault = self._seq_store_fault
            for inst in self.config.instances:
                self.start_instance(inst)
            self.maintenance.start()
            if self.history is not None:
                self.history.start()
            self._ready()
            asyncio.get_running_loop().call_later(GC_SETTLE_S, settle_gc)
            await self.stop_event.wait()
            try:
                await self._shutdown()
            finally:
                self.finish()  # stopped in time: the backstop must not fire later (embedders run several)
        return 0

    def _seq_store_fault(self, why: str) -> None:
        """seq.sqlite failed during the run: numbers go on in memory; after a crash they may repeat.
        Called from inside a seq reservation: the event is published on the next loop turn."""
        asyncio.get_running_loop().call_soon(self._publish_seq_store_fault, why)

    def _publish_seq_store_fault(self, why: str) -> None:
        self.publisher.event(
            "agent", "seq_store_fault", f"{why}; seq numbers are kept in memory for this run", Severity.CRITICAL, {}
        )

    def _ready(self) -> None:
        """READY=1 once the config is valid and the session started (not necessarily connected:
        a broker outage at boot must not make systemd kill an agent that is buffering data)."""
        loop = asyncio.get_running_loop()
        self.notifier.ready(f"running {len(self.runners)} instance(s), broker {self.url}")
        wd = watchdog_task(self.notifier, interval_s=self.notifier.watchdog_interval_s())
        self._background.append(loop.create_task(wd, name="watchdog"))
        self._background.append(loop.create_task(self._status_loop(), name="notify-status"))

    async def _status_loop(self) -> None:
        last = ""
        while self.notifier.enabled:
            await asyncio.sleep(10.0)
            s = self.session.stats
            text = (
                f"{'connected' if self.session.connected.is_set() else 'DISCONNECTED'}; "
                f"{len(self.runners)} instance(s); {s.sent} sent; queue {self.outbox.depth()}"
            )
            if text != last:
                self.notifier.status(text)
                last = text

    def _make_outbox(self, state_dir: Path) -> Outbox:
        if self.config.spool.enabled:
            from edge_agent.agent.messaging.spool import SpoolOutbox

            self.seqs.reserve_when_handed(eager=(self.topics.status, self.topics.config_state))
            return SpoolOutbox(
                state_dir / "spool.sqlite",
                self.config.spool,
                seqs=self.seqs,
                memory_max_messages=self.config.mqtt.queue_max,
                on_drop=self._spool_dropped,
                on_fault=self._spool_fault,
            )
        return MemoryOutbox(self.config.mqtt.queue_max, on_drop=self._spool_dropped)

    def _spool_dropped(self, since: dict[str, int], total: dict[str, int]) -> None:
        n = sum(since.values())
        self.publisher.event(
            "agent",
            "spool_full",
            f"outbox full: dropped the {n} oldest message(s) (data {since['data']}, event {since['event']})",
            Severity.WARNING,
            {"dropped": since, "dropped_total": total},
        )

    def _spool_fault(self, kind: str, why: str) -> None:
        self.publisher.event("agent", "spool_fault", why, Severity.CRITICAL, {"fault": str(kind)})

    def _session_options(self, subs: dict[str, Handler]) -> SessionOptions:
        m = self.config.mqtt
        return SessionOptions(
            url=self.url,
            client_id=f"edge-agent-{self.config.agent_id}",
            keepalive_s=m.keepalive_s,
            username=m.username,
            password=read_password(m.password_file),
            ca_file=m.ca_file,
            cert_file=m.cert_file,
            key_file=m.key_file,
            max_inflight=m.max_inflight,
            reconnect_min_s=m.reconnect_min_s,
            reconnect_max_s=m.reconnect_max_s,
            will_topic=self.topics.status,
            will_payload=lambda: self._status_payload("offline", "lost"),
            birth=self._birth,
            subscriptions=subs,
            on_shed=self._inbound_shed,
        )

    def _inbound_shed(self, since: dict[str, int], total: dict[str, int]) -> None:
        """Inbound messages dropped by the session's limits (a flood): say how many, where."""
        where = ", ".join(f"{k}: {v}" for k, v in since.items())
        self.publisher.event(
            "agent",
            "inbound_shed",
            f"inbound flood: dropped {sum(since.values())} message(s) ({where})",
            Severity.WARNING,
            {"dropped": since, "dropped_total": total},
        )

    def _make_history(self, state_dir: Path) -> History | None:
        """On-device history (agent/history), an output of the publisher; None when off."""
        if not self.config.history.enabled:
            return None
        history = History(state_dir, self.config.history, self._declared)
        self.publisher.outputs.append(history)
        return history

    def _declared(self, name: str) -> tuple[ValueSpec, ...] | None:
        """The values an instance declares (None: it declares none, or it is not configured)."""
        inst = next((i for i in self.config.instances if i.name == name), None)
        return None if inst is None else declared(inst)

    def _agent_commands(self) -> dict[str, AgentCommandHandler]:
        """Agent-level command names and the part that answers each."""
        parts: list[Any] = [self.maintenance, self.history]
        return {name: part for part in parts if part is not None for name in part.COMMANDS}

    def _make_sparkplug(self, state_dir: Path) -> Any:
        """The Sparkplug B edge node beside (or instead of) the native topics; None when off."""
        sp = self.config.sparkplug
        if not sp.enabled:
            return None
        from edge_agent.agent.sparkplug.node import SparkplugNode

        node = SparkplugNode(
            sp,
            agent_id=self.config.agent_id,
            state_dir=state_dir,
            session=self.session.opts,
            health=self._sparkplug_health,
            write=self._sparkplug_write,
        )
        self.publisher.outputs.append(node)
        self.publisher.native = sp.native
        return node

    def _sparkplug_health(self) -> dict[str, Any]:
        from edge_agent.agent.sparkplug.payload import DataType

        states = [r.state for r, _ in getattr(self, "runners", {}).values()]
        return {
            "Properties/Agent Version": (DataType.STRING, __version__),
            "Properties/Config Version": (DataType.INT64, self.config.version),
            "Properties/Config Hash": (DataType.STRING, self.config.hash),
            "Properties/Host": (DataType.STRING, socket.gethostname()),
            "Health/Instances": (DataType.INT64, len(states)),
            "Health/Instances Running": (DataType.INT64, sum(st in (State.RUNNING, State.DEGRADED) for st in states)),
            "Health/Instances Failing": (DataType.INT64, sum(st in (State.BACKOFF, State.HUNG) for st in states)),
            "Health/Native Connected": (DataType.BOOLEAN, self.session.connected.is_set()),
            "Health/Native Queue": (DataType.INT64, self.outbox.depth()),
        }

    async def _sparkplug_write(self, instance: str, key: str, value: Any) -> Any:
        """A DCMD write goes the way cmd/write goes (the plugin's allow_writes, writable, limits, audit)."""
        commands = self.commands or Commands(
            self.control,
            answer=lambda name, d: None,
            chunk_bytes=self.config.remote.capture_chunk_bytes,
            audit=self._audit,
        )
        req = {"instance": instance, "args": {"tag": key, "value": value}}
        return await commands.run("write", req, source="sparkplug")

    def _subscriptions(self) -> dict[str, Handler]:
        """Build remote config and commands (once) and return their topic handlers."""
        if not self.config.remote.enabled:
            return {}
        groups = tuple(self.config.agent.groups)
        self.remote = RemoteConfig(
            self.control, agent_id=self.config.agent_id, groups=groups, answer=self._config_answer
        )
        self.commands = Commands(
            self.control,
            answer=self._cmd_answer,
            chunk_bytes=self.config.remote.capture_chunk_bytes,
            agent_commands=self._agent_commands(),
            audit=self._audit,
        )
        self.control.on_reload.append(self.remote.reset_keys)  # [remote] trusted_keys may have changed
        subs: dict[str, Handler] = {
            self.topics.config_set: self.remote.on_push,
            self.topics.config_desired: self.remote.on_desired,
        }
        for g in groups:
            subs[self.topics.group_desired(g)] = self.remote.on_desired
        subs[self.topics.cmd] = self.commands.on_command
        return subs

    def _config_answer(self, d: dict[str, Any]) -> None:
        self.outbox.put(self.publisher.message(self.topics.config_result, d, priority=Priority.EVENT))

    def _audit(self, kind: str, message: str, fields: dict[str, Any]) -> None:
        self.publisher.event("agent", kind, message, Severity.INFO, fields)

    def _cmd_answer(self, name: str, d: dict[str, Any]) -> None:
        durable = self.commands is not None and self.commands.knows(
            name
        )  # an unknown name (cmd/<random>) must not add a seq row
        msg = self.publisher.message(self.topics.cmd_result(name), d, priority=Priority.EVENT, durable_seq=durable)
        self.outbox.put(msg)

    def _install_signals(self) -> None:
        # A Python-level handler, not loop.add_signal_handler: it runs between bytecodes even when
        # the loop is busy, so the stop deadline and the second signal hold whatever the loop does.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: self._on_stop_signal(loop, signum))
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload(), name="reload"))

    def _on_stop_signal(self, loop: asyncio.AbstractEventLoop, signum: int) -> None:
        if self.stop_event.is_set():  # a second SIGTERM or Ctrl-C: the operator wants out now
            log.warning("second %s: exiting at once", signal.Signals(signum).name)
            hard_exit(128 + signum)
        loop.call_soon_threadsafe(self.stop)

    def stop(self) -> None:
        """Ask the runtime to stop (signal handlers, tests, the demo); the stop deadline starts now."""
        if not self.stop_event.is_set():
            log.info("stopping (deadline %g s)", self.config.agent.stop_timeout_s)
            self._stop_timer = threading.Timer(self.config.agent.stop_timeout_s, self._stop_overdue)
            self._stop_timer.daemon = True
            self._stop_timer.start()
        self.stop_event.set()

    def _stop_overdue(self) -> None:
        """The backstop: the clean shutdown is bounded to finish earlier; this fires only if it did not."""
        log.error(
            "stop deadline of %g s passed: exiting without the rest of the clean shutdown",
            self.config.agent.stop_timeout_s,
        )
        hard_exit(1)

    async def _shutdown(self) -> None:
        """Bounded clean stop: instances, then drain, offline status, spool and seq store, within the deadline."""
        budget = self.config.agent.stop_timeout_s
        deadline = time.monotonic() + budget * 0.9
        self.notifier.stopping()
        for task in self._background:
            task.cancel()
        # hung reads and close() are abandoned on their lanes (daemon threads): they cannot hold the exit
        await self.stop_instances(list(self.runners), timeout_s=min(1.5, budget * 0.3))
        if self.sparkplug is not None:
            await self.sparkplug.close()  # DDEATHs went out as instances stopped; now the NDEATH
        await self.session.drain(timeout_s=max(0.1, deadline - time.monotonic() - 1.0))
        offline = self._status_message("offline", "stopped")
        await self.session.close(final=offline, timeout_s=max(0.1, deadline - time.monotonic() - 0.3))
        self.maintenance.close()
        if self.history is not None:
            self.history.close()
        await self.outbox.close()
        self.seqs.close()
        self.stopped_clean = True
        stuck = self.lanes.stats()["stuck"]
        if stuck:
            log.warning("exiting with %d driver call(s) still stuck: %s", len(stuck), ", ".join(sorted(stuck)))

    def finish(self) -> None:
        """After the loop ended: cancel the backstop timer."""
        timer = getattr(self, "_stop_timer", None)
        if timer is not None:
            timer.cancel()

    # --- instances --------------------------------------------------------------------
    def make_runner(self, inst: Instance) -> InstanceRunner:
        return InstanceRunner(
            inst,
            self.publisher,
            self.lanes.get(inst.name),
            agent=AgentInfo(
                self.config.agent.state_dir,
                self.stats,
                store=self.maintenance.store,
                recorder=self.maintenance.recorder,
            ),
            on_state=self._instance_state_changed,
            driver_tap=self.maintenance.wrap_driver,
        )

    def _instance_state_changed(self, runner: InstanceRunner) -> None:
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
        if not self.stop_event.is_set():
            self.publish_state(status=False)  # the status carries no instance state

    def _plugin_of(self, name: str) -> str | None:
        """The plugin of an instance (asked for every published message: cached per config)."""
        cached = getattr(self, "_plugins", None)
        if cached is None or cached[0] is not self.config:
            cached = self._plugins = (self.config, {i.name: i.plugin.name for i in self.config.instances})
        return cached[1].get(name)

    def _driver_keys(self, name: str) -> list[str] | None:
        """The value keys the instance's driver declares (declared values API), None if unknown."""
        inst = next((i for i in self.config.instances if i.name == name), None)
        if inst is None or inst.driver is None:
            return None
        values_fn = getattr(inst.driver, "values", None)
        if values_fn is None:
            return None
        try:
            specs = values_fn(inst.driver_options)
        except Exception:  # a third-party declaration that fails: fall back to what was read
            return None
        numeric = {"float32", "float64", "int"}
        return [s.key for s in specs if str(s.dtype) in numeric]

    def start_instance(
        self, inst: Instance, runner: InstanceRunner | None = None, opened: tuple[Any, Plugin] | None = None
    ) -> InstanceRunner:
        """Start (or adopt an already opened) instance as a named task."""
        runner = runner or self.make_runner(inst)
        task = asyncio.get_running_loop().create_task(runner.run(opened), name=f"instance:{inst.name}")
        self.runners[inst.name] = (runner, task)
        specs = self.declared(inst)
        self.publisher.declare(inst.name, specs)
        if self.sparkplug is not None:
            self.sparkplug.device_started(inst.name, specs)
        return runner

    def declared(self, inst: Instance) -> tuple[Any, ...]:
        """The instance's declared values (key, dtype, unit, writable): the wire types and DBIRTH."""
        from edge_agent.agent.config.declared_values import declared_values

        return declared_values(inst)

    async def stop_instances(self, names: list[str], *, timeout_s: float = 2.0) -> None:
        """Cancel instances and wait (bounded) for their drivers to close."""
        tasks = []
        for name in names:
            entry = self.runners.pop(name, None)
            if entry is not None:
                entry[1].cancel()
                tasks.append(entry[1])
                self.publisher.link.forget(name)
                if self.history is not None:
                    self.history.forget(name)  # a pushed instance may declare other values
                self.lanes.release(name)  # the thread ends when its last call returns (at once if idle)
                if self.sparkplug is not None:
                    self.sparkplug.device_stopped(name)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    async def restart_instance(self, name: str) -> None:
        """Stop and start one instance with its current config (the restart command)."""
        runner = self.runners[name][0]
        await self.stop_instances([name])
        self.start_instance(runner.inst)

    async def reload(self) -> None:
        """SIGHUP: re-read the local file through the one apply path (see AgentControl.reload_file)."""
        self.notifier.reloading()
        result = await self.control.reload_file()
        log.info("reload: %s", result)
        self.notifier.ready(
            f"reloaded: {len(self.runners)} instance(s)" if result.get("reloaded") else "reload refused"
        )

    # --- status and state ----------------------------------------------------------------
    def _status_payload(self, state: str, reason: str = "") -> bytes:
        return self._status_message(state, reason).payload

    def _status_message(self, state: str, reason: str = "") -> Message:
        d: dict[str, Any] = {
            "state": state,
            "version": __version__,
            "config_version": self.control.layer.version,
            "config_hash": self.control.hash,
            "groups": list(self.config.agent.groups),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self.started_ms,
        }
        lanes = self.lanes.stats()
        d["threads"] = {k: lanes[k] for k in ("threads", "lane_threads", "max_lane_threads", "lanes")}
        d["threads"]["stuck"] = len(lanes["stuck"])
        if reason:
            d["reason"] = reason
        return self.publisher.message(self.topics.status, d, retain=True, priority=Priority.STATE)

    def _birth(self) -> list[Message]:
        if self.first_publish_s is None:
            self.first_publish_s = time.monotonic() - self.started_mono
        return [self._status_message("online"), self.config_state_message()]

    def config_state_message(self) -> Message:
        d = self.control.state()
        return self.publisher.message(self.topics.config_state, d, retain=True, priority=Priority.STATE)

    def publish_state(self, *, status: bool = True) -> None:
        """Republish the retained status (config version) and config/state after a change.

        Straight to the client and only while connected: a state message waiting in the spool
        would reach the broker after the next birth and overwrite the newer retained state with
        an older one. While disconnected nothing is lost: every (re)connect publishes the birth."""
        session = getattr(self, "session", None)
        if session is None or not session.connected.is_set():
            return
        if status:  # coalesced per topic and rate-limited by the session (a flood of rejections)
            session.publish_latest(self.topics.status, lambda: self._status_message("online"))
        session.publish_latest(self.topics.config_state, self.config_state_message)

    def instance_states(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, (runner, _) in self.runners.items():
            st: dict[str, Any] = {"plugin": runner.inst.plugin.name, **runner.info.as_dict()}
            if runner.state in (State.BACKOFF, State.HUNG) and runner.stats.last_error:
                st["error"] = runner.stats.last_error
            out[name] = st
        return out

    def stats(self) -> AgentStats:
        """Counters for the system plugin and the status command."""
        s = self.session.stats
        return {
            "uptime_s": round(time.monotonic() - self.started_mono, 1),
            "queue_depth": self.outbox.depth(),
            "inflight": self.session.inflight(),
            "sent": s.sent,
            "bytes_sent": s.bytes_sent,
            "reconnects": s.reconnects,
            "connected": self.session.connected.is_set(),
            "dropped": self.outbox.dropped(),
            "created": self.publisher.created,
            "threads": self.lanes.stats(),
            "instances": {
                n: cast(InstanceStats, vars(r.stats) | {"state": str(r.state)}) for n, (r, _) in self.runners.items()
            },
        }
