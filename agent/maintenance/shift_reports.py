"""Shift reports: what happened on a line during a shift, assembled when ``production`` ends it.

Per line (a ``production`` instance) the agent accumulates, from what every instance publishes:
alarms raised (per instance), the worst ISO 20816-3 (10816-3) zone per vibration asset, the
machine faults diagnosed (``machine_fault`` events: fault, confidence, evidence), temperature
alarms per channel, and which maintenance plans are due. At the line's ``shift_end`` event the report is
the production figures of that event plus these, stored as a permanent record, published
retained on ``{p}/{agent}/report/{line}`` and announced by a ``shift_report`` event. The
accumulators are saved in the state store, so a restart within the shift loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edge_agent.plugins.contract import Severity, StateStore

NS = "report"
ZONES = "ABCD"
EventFn = Callable[[str, str, str, Severity, dict[str, Any]], None]


def _empty() -> dict[str, Any]:
    return {"alarms": {}, "iso": {}, "temp_alarms": {}}


class ShiftReports:
    """Accumulators per line; ``plugin_of(instance)`` names each instance's plugin."""

    def __init__(
        self,
        store: StateStore,
        plugin_of: Callable[[str], str | None],
        publish: Callable[[str, dict[str, Any]], None],
        event: EventFn,
    ) -> None:
        self.store, self.plugin_of, self.publish, self.event = store, plugin_of, publish, event
        self.acc: dict[str, dict[str, Any]] = {}
        self.maintenance: dict[str, dict[str, Any]] = {}  # maintenance instance -> latest plans

    def _line(self, instance: str) -> dict[str, Any] | None:
        """The accumulator of a production instance (taken back from the store after a restart)."""
        acc = self.acc.get(instance)
        if acc is None and self.plugin_of(instance) == "production":
            saved = self.store.load(NS, instance)
            acc = self.acc[instance] = saved if isinstance(saved, dict) else _empty()
        return acc

    def _each(self) -> list[tuple[str, dict[str, Any]]]:
        return [(line, acc) for line, acc in list(self.acc.items()) if self.plugin_of(line) == "production"]

    def on_data(self, instance: str, values: Mapping[str, Any]) -> None:
        if instance not in self.acc:
            self._line(instance)
        zone = values.get("iso_zone")
        if isinstance(zone, str) and zone in ZONES:
            for line, acc in self._each():
                old = acc["iso"].get(instance)
                if old is None or zone > old:
                    acc["iso"][instance] = zone
                    self.store.save(NS, line, acc)
        if self.plugin_of(instance) == "maintenance":
            self.maintenance[instance] = {k: v for k, v in values.items() if isinstance(v, Mapping)}

    def on_event(self, instance: str, kind: str, severity: str, fields: Mapping[str, Any]) -> None:
        if kind == "shift_end" and self._line(instance) is not None:
            self._report(instance, dict(fields))
            return
        raised = (kind == "alarm" and fields.get("active") is True) or (
            kind != "alarm" and fields.get("active") is not False and severity in ("alarm", "critical")
        )
        if not raised:
            return
        for line, acc in self._each():
            if kind == "machine_fault":
                faults = acc.setdefault("machine_faults", {}).setdefault(instance, {})
                faults[str(fields.get("fault"))] = {k: fields.get(k) for k in ("confidence", "evidence")}
            acc["alarms"][instance] = acc["alarms"].get(instance, 0) + 1
            if kind == "alarm" and self.plugin_of(instance) == "temperature":
                channel = str(fields.get("feature", "?")).split(".")[0]
                key = f"{instance}/{channel}"
                entry = acc["temp_alarms"].setdefault(key, {"count": 0, "levels": []})
                entry["count"] += 1
                if fields.get("level") not in entry["levels"]:
                    entry["levels"].append(fields.get("level"))
            self.store.save(NS, line, acc)

    def _due(self) -> list[dict[str, Any]]:
        out = []
        for inst, assets in self.maintenance.items():
            for asset, d in assets.items():
                for pid, plan in dict(d.get("plans") or {}).items():
                    if isinstance(plan, Mapping) and plan.get("status") in ("due", "overdue"):
                        out.append(
                            {
                                "instance": inst,
                                "asset": asset,
                                "plan": pid,
                                "task": plan.get("task", pid),
                                "status": plan["status"],
                                "basis": plan.get("basis"),
                            }
                        )
        return out

    def _report(self, line: str, shift: dict[str, Any]) -> None:
        acc = self.acc.get(line) or _empty()
        shift.pop("kind", None)
        for k in ("severity", "msg"):
            shift.pop(k, None)
        report = {
            "line": line,
            "shift": shift.get("name"),
            "started": shift.get("started"),
            "ended": shift.get("ended"),
            "production": shift,
            "alarms_raised": sum(acc["alarms"].values()),
            "alarms_by_instance": acc["alarms"],
            "worst_iso_zone": acc["iso"],
            "machine_faults": acc.get("machine_faults", {}),
            "temperature_alarms": acc["temp_alarms"],
            "maintenance_due": self._due(),
        }
        report["record_id"] = self.store.record(NS, line, report)
        self.acc[line] = _empty()
        self.store.save(NS, line, self.acc[line])
        self.publish(line, report)
        oee = shift.get("oee")
        self.event(
            line,
            "shift_report",
            f"shift report {report['shift']} ({report['started']}): OEE {oee if oee is None else round(float(oee), 3)}",
            Severity.INFO,
            {"shift": report["shift"], "record_id": report["record_id"]},
        )

    def find(self, line: str | None, shift: str | None, limit: int = 1) -> list[dict[str, Any]]:
        """Stored reports, newest first, of one line (or all) and one shift name (or any)."""
        out = [r for r in self.store.records(NS, line, limit=500) if shift is None or r.get("shift") == shift]
        return out[:limit]
