"""The runtime: one agent's life cycle over the parts bootstrap built (agent/runtime/bootstrap.py):
start, signals (TERM/INT stop, HUP reload), the bounded clean stop, systemd notify."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge_agent.agent import state_files
from edge_agent.agent.config.schema import Config
from edge_agent.agent.extensions import Extensions
from edge_agent.agent.messaging.mqtt_session import MqttSession
from edge_agent.agent.messaging.outbox import Outbox
from edge_agent.agent.messaging.publisher import Publisher
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.agent.remote.commands import Commands
from edge_agent.agent.remote.config_push import RemoteConfig
from edge_agent.agent.runtime.agent_events import AgentEvents
from edge_agent.agent.runtime.control import AgentControl
from edge_agent.agent.runtime.instances import Instances
from edge_agent.agent.runtime.reporting import StatusMessages
from edge_agent.agent.runtime.sd_notify import Notifier, watchdog_task
from edge_agent.drivers.lanes import Lanes

log = logging.getLogger("agent.runtime")

GC_SETTLE_S = 15.0  # after start: lazy imports done, every instance has polled
STATUS_INTERVAL_S = 10.0  # systemd STATUS= line refresh
ALIVE_S = 60.0  # the retained status is published again this often (fleet's "last seen")


def settle_gc() -> None:
    """Put every object alive now out of the garbage collector's sight (``gc.freeze``).

    A full collection walks all module-level objects with the GIL held: 15-17 ms in the reference
    plant on the test VM, several times that on a Pi. That is longer than the 6 ms an ADXL345 FIFO
    at 3.2 kHz can wait for its drain thread, and it delays every 1-Hz value. What start-up left
    behind lives for the whole run anyway; later collections then only walk newer objects.
    """
    gc.freeze()
    log.debug("gc: %d start-up objects frozen", gc.get_freeze_count())


def hard_exit(code: int) -> None:
    """Leave now: flush the logs and skip everything else (stuck threads, atexit handlers)."""
    logging.shutdown()
    os._exit(code)


@dataclass(frozen=True)
class Remote:
    """Remote config and commands: the one pair the session's subscriptions call."""

    pushes: RemoteConfig
    commands: Commands


class Runtime:
    """One agent process: ``await build_runtime(cfg, reg).run()`` returns the exit code."""

    def __init__(
        self,
        *,
        config: Config,
        url: str,
        seqs: SeqStore,
        outbox: Outbox,
        publisher: Publisher,
        lanes: Lanes,
        agent_events: AgentEvents,
        instances: Instances,
        control: AgentControl,
        remote: Remote | None,
        session: MqttSession,
        messages: StatusMessages,
        extensions: Extensions,
        notifier: Notifier,
    ) -> None:
        self.config = config  # as started: [agent], [mqtt], [spool], [sparkplug] need a restart
        self.url = url
        self.seqs = seqs
        self.outbox = outbox
        self.publisher = publisher
        self.lanes = lanes
        self.agent_events = agent_events
        self.instances = instances
        self.control = control
        self.remote = remote
        self.session = session
        self.messages = messages
        self.extensions = extensions
        self.notifier = notifier
        self.stop_event = asyncio.Event()
        self.stopped_clean = False
        self._background: list[asyncio.Task[None]] = []
        self._stop_timer: threading.Timer | None = None

    # --- life cycle -------------------------------------------------------------------
    async def run(self) -> int:
        """Start, run until stopped, stop cleanly within the deadline; returns the exit code."""
        self._install_signals()
        async with self.session:
            await self._start()
            await self.stop_event.wait()
            try:
                await self._shutdown()
            finally:
                self.finish()  # stopped in time: the backstop must not fire later (embedders run several)
        return 0

    async def _start(self) -> None:
        for service in self.extensions.services:
            await service.start()
        moved = state_files.recently_moved_aside(Path(self.control.file_config.agent.state_dir))
        self.agent_events.at_start(self.seqs, [*self.control.layer.faults, *moved])
        for inst in self.instances.config.instances:
            self.instances.start_instance(inst)
        self._ready()
        asyncio.get_running_loop().call_later(GC_SETTLE_S, settle_gc)

    def _ready(self) -> None:
        """READY=1 once the config is valid and the session started (not necessarily connected:
        a broker outage at boot must not make systemd kill an agent that is buffering data)."""
        loop = asyncio.get_running_loop()
        self.notifier.ready(f"running {len(self.instances.runners)} instance(s), broker {self.url}")
        wd = watchdog_task(self.notifier, interval_s=self.notifier.watchdog_interval_s())
        self._background.append(loop.create_task(wd, name="watchdog"))
        self._background.append(loop.create_task(self._status_loop(), name="notify-status"))
        self._background.append(loop.create_task(self._alive_loop(), name="alive-status"))

    async def _alive_loop(self) -> None:
        """The retained status once a minute, so ``fleet``'s "last seen" is the agent's, not its
        last change (about 5 B/s of a status message; skipped while disconnected)."""
        while True:
            await asyncio.sleep(ALIVE_S)
            self.session.publish_latest(self.messages.topics.status, lambda: self.messages.status("online"))

    async def _status_loop(self) -> None:
        last = ""
        while self.notifier.enabled:
            await asyncio.sleep(STATUS_INTERVAL_S)
            text = (
                f"{'connected' if self.session.connected.is_set() else 'DISCONNECTED'}; "
                f"{len(self.instances.runners)} instance(s); {self.session.stats.sent} sent; "
                f"queue {self.outbox.depth()}"
            )
            if text != last:
                self.notifier.status(text)
                last = text

    # --- signals --------------------------------------------------------------------------
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

    async def reload(self) -> None:
        """SIGHUP: re-read the local file through the one apply path (see AgentControl.reload_file)."""
        self.notifier.reloading()
        result = await self.control.reload_file()
        log.info("reload: %s", result)
        self.notifier.ready(
            f"reloaded: {len(self.instances.runners)} instance(s)" if result.get("reloaded") else "reload refused"
        )

    # --- stop -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the runtime to stop (signal handlers, tests, the demo); the stop deadline starts now."""
        if self._stop_timer is None:
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
        """Bounded clean stop: instances, services, then drain, offline status, spool and seq store."""
        budget = self.config.agent.stop_timeout_s
        deadline = time.monotonic() + budget * 0.9
        self.notifier.stopping()
        for task in self._background:
            task.cancel()
        # hung reads and close() are abandoned on their lanes (daemon threads): they cannot hold the exit
        await self.instances.stop_all(timeout_s=min(1.5, budget * 0.3))
        await self._close_services()
        await self.session.drain(timeout_s=max(0.1, deadline - time.monotonic() - 1.0))
        offline = self.messages.status("offline", "stopped")
        await self.session.close(final=offline, timeout_s=max(0.1, deadline - time.monotonic() - 0.3))
        await self.outbox.close()
        self.seqs.close()
        self.stopped_clean = True
        stuck = self.lanes.stats()["stuck"]
        if stuck:
            log.warning("exiting with %d driver call(s) still stuck: %s", len(stuck), ", ".join(sorted(stuck)))

    async def _close_services(self) -> None:
        """Close the registered services, last registered first (Sparkplug: the DDEATHs went out as
        the instances stopped, now the NDEATH); one that fails must not cost the others, the drain,
        the offline status or the spool."""
        for service in reversed(self.extensions.services):
            try:
                await service.close()
            except Exception:
                log.exception("closing %s failed", type(service).__name__)

    def finish(self) -> None:
        """After the loop ended: cancel the backstop timer."""
        if self._stop_timer is not None:
            self._stop_timer.cancel()
