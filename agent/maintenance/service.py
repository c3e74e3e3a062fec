"""Wires calibration, captures, shift reports and the plugins' state store into the runtime.

Bootstrap (agent/runtime/bootstrap.py) builds one :class:`Maintenance` after the publisher and
registers it at three extension points (agent/extensions.py): a driver wrapper (the tap), a
publish hook (snapshot, triggers, report accumulators, the ``uncertain`` quality of channels
past their calibration due date) and a service (periodic flush). It answers the agent-level
commands ``calibrate``, ``captures``, ``capture_get``, ``report`` and ``maintenance``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge_agent.agent.extensions import Quality
from edge_agent.agent.maintenance.calibration import Calibrations
from edge_agent.agent.maintenance.capture_store import Recorder
from edge_agent.agent.maintenance.driver_tap import DriverTap
from edge_agent.agent.maintenance.planner import Planner
from edge_agent.agent.maintenance.shift_reports import ShiftReports
from edge_agent.agent.maintenance.store import SqliteStore
from edge_agent.agent.messaging.outbox import Priority
from edge_agent.plugins.contract import Severity, UnknownCommand

log = logging.getLogger("agent.maintenance")
FLUSH_S = 300.0  # default of [agent] state_flush_s: state written this often; a power cut loses at most this


class Maintenance:
    """One per runtime, beside the runtime's publisher."""

    COMMANDS = ("calibrate", "captures", "capture_get", "report", "maintenance")

    def __init__(
        self,
        state_dir: Path,
        publisher: Any,
        plugin_of: Callable[[str], str | None],
        declared: Callable[[str], list[str] | None],
        flush_s: float = FLUSH_S,
        clock_check: Callable[[], object] = lambda: None,
    ) -> None:
        self.publisher = publisher
        self.flush_s = flush_s
        self.declared = declared
        self.store = SqliteStore(state_dir / "maintenance.sqlite")
        self.cal = Calibrations(self.store, self._publish_calibration, self._event)
        self.recorder = Recorder(state_dir / "captures", self._event, self.store)
        self.planner = Planner(self.store, lambda i: plugin_of(i) == "maintenance", self._publish_due)
        self.reports = ShiftReports(
            self.store, plugin_of, self._publish_report, self._event, self.planner, clock_check=clock_check
        )
        self._task: asyncio.Task[None] | None = None

    # -- publishing ------------------------------------------------------------------------------
    def _event(self, instance: str, kind: str, msg: str, severity: Severity, fields: dict[str, Any]) -> None:
        self.publisher.event(instance, kind, msg, severity, fields)

    def _retained(self, topic: str, d: dict[str, Any]) -> None:
        p = self.publisher
        p.outbox.put(p.message(topic, d, retain=True, priority=Priority.STATE))

    def _publish_calibration(self, instance: str, channel: str, rec: dict[str, Any]) -> None:
        self._retained(f"{self.publisher.topics.base}/calibration/{instance}/{channel}", rec)

    def _publish_report(self, line: str, report: dict[str, Any]) -> None:
        self._retained(f"{self.publisher.topics.base}/report/{line}", report)

    def _publish_due(self, due: dict[str, Any]) -> None:
        self._retained(f"{self.publisher.topics.base}/maintenance/due", due)

    # -- hooks -------------------------------------------------------------------------------------
    def wrap_driver(self, instance: str, driver: Any) -> Any:
        """The driver tap: readings calibrated before the plugin sees them, copied into the capture rings."""
        return DriverTap(instance, driver, self._after_read)

    def _after_read(self, instance: str, reading: Any) -> Any:
        reading = self.cal.correct(instance, reading)
        self.recorder.feed(instance, reading)
        return reading

    def on_data(self, instance: str, values: Mapping[str, Any], quality: Quality) -> Quality:
        """Publisher hook: returns the quality map to send (channels past due: ``uncertain``)."""
        due = self.cal.uncertain.get(instance)
        if due:
            marks: dict[str, str] = {}
            for key, v in values.items():
                if key not in due:
                    continue
                if isinstance(v, Mapping):  # a channel's features: {"motor_de": {"temp_c": ..., ...}}
                    marks.update((f"{key}.{sub}", "uncertain") for sub in v)
                else:
                    marks[key] = "uncertain"
            if marks:
                quality = {**marks, **(quality or {})}  # a worse quality the plugin gave wins
        self.recorder.on_data(instance, values, quality)
        self.reports.on_data(instance, values)
        self.planner.on_data(instance, values)
        return quality

    def on_event(self, instance: str, kind: str, severity: str, fields: Mapping[str, Any]) -> None:
        self.recorder.on_event(instance, kind, fields)
        self.reports.on_event(instance, kind, severity, fields)
        self.planner.on_event(instance, kind, fields)

    # -- commands ----------------------------------------------------------------------------------
    async def command(self, name: str, args: Mapping[str, Any]) -> Any:
        """Agent-level commands (COMMANDS; routed by agent/remote/commands.py)."""
        if name == "calibrate":
            inst = args.get("instance")
            declared = self.declared(inst) if isinstance(inst, str) else None
            return self.cal.command(args, declared)
        if name == "captures":
            return {"captures": self.recorder.list(), "stats": self.recorder.stats()}
        if name == "capture_get":
            cid = str(args.get("id", ""))
            return {"id": cid, "format": "edge-agent-capture/1", "samples": self.recorder.get(cid)}
        if name == "maintenance":
            return self.planner.command(args)
        if name == "report":
            line, shift = args.get("line"), args.get("shift")
            limit = int(args.get("limit", 1))
            found = self.reports.find(
                line if isinstance(line, str) else None,
                shift if isinstance(shift, str) else None,
                max(1, min(limit, 50)),
            )
            if not found:
                raise ValueError(f"no shift report{' for ' + shift if shift else ''} yet")
            return {"reports": found}
        raise UnknownCommand(name)

    # -- life cycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Republish the calibration records, check what is due, start the periodic flush."""
        if self.store.fault:
            self._event(
                "agent",
                "maintenance_store_fault",
                f"{self.store.fault}; calibration records, counters and reports are kept in memory only for this run",
                Severity.CRITICAL,
                {},
            )
        self.cal.republish()
        self.cal.check_due()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="maintenance")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            try:
                self.cal.check_due()
                await asyncio.get_running_loop().run_in_executor(None, self.store.flush)
            except Exception:  # the store must never take the agent down
                log.exception("maintenance: periodic work failed")

    async def close(self) -> None:
        """Stop the periodic flush and close the store (the last flush)."""
        if self._task is not None:
            self._task.cancel()
        try:
            self.store.close()
        except Exception as exc:
            log.error("maintenance store: close failed: %s", exc)

    def stats(self) -> dict[str, Any]:
        return {"store_commits": self.store.commits, "store_rows": self.store.rows_written, "at": time.time()}
