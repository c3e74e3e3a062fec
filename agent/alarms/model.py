"""Alarms as records with ISA-18.2 states, and which events raise and clear which alarm.

Pure: no I/O. ``alarm_change`` maps one event to (alarm id, active, details) or None; an
:class:`AlarmRecord` holds one alarm's state (active x acknowledged, shelving).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


class AlarmState(enum.StrEnum):
    """ISA-18.2 / IEC 62682 alarm states (the list shows the first three)."""

    ACTIVE_UNACK = "active_unack"  # needs attention: the condition is there, nobody acknowledged
    ACTIVE_ACK = "active_ack"  # someone is on it; the condition is still there
    CLEARED_UNACK = "cleared_unack"  # the condition went away before anyone acknowledged it
    NORMAL = "normal"  # cleared and acknowledged: off the list, kept in the recent history


@dataclass(frozen=True, slots=True)
class Change:
    """What an event says about one alarm."""

    id: str  # instance/what, stable across restarts: "thermo-a/motor_de.temp_c/high"
    instance: str
    name: str  # for a person: "motor_de.temp_c high"
    active: bool
    severity: str = "alarm"
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    raised_by: Mapping[str, Any] = field(default_factory=dict)  # the event's kind and fields (replayed)


_NOT_ALARMS = ("tag_fault", "tag_ok")  # one tag of hundreds: an event, not a list entry


def alarm_change(instance: str, kind: str, severity: str, message: str, fields: Mapping[str, Any]) -> Change | None:
    """The alarm an event raises or clears (with the event, to replay to Sparkplug), or None."""
    change = _change(instance, kind, severity, message, fields)
    if change is None or not change.active:
        return change
    event = {"kind": kind, "fields": {k: v for k, v in fields.items() if isinstance(v, (str, int, float, bool))}}
    return Change(change.id, instance, change.name, True, severity, message, change.details, event)


def _change(instance: str, kind: str, severity: str, message: str, fields: Mapping[str, Any]) -> Change | None:
    channel = fields.get("channel")
    where = f"/{channel}" if isinstance(channel, str) and channel not in ("", "*") else ""
    keep = {k: v for k, v in fields.items() if k in ("value", "limit", "unit", "quality", "hz", "ratio_db", "zone")}
    active = fields.get("active")
    if isinstance(active, bool) and ("level" in fields or "tone" in fields or kind == "machine_fault"):
        # a machine diagnosis (vibration's machine_fault) raises and clears like a bearing fault
        what = (
            str(fields.get("feature", kind))
            if "level" in fields
            else f"bearing {fields['tone']}"
            if "tone" in fields
            else str(fields.get("fault", "machine"))
        )
        level = str(fields.get("level", "fault"))
        return Change(f"{instance}/{kind}/{what}/{level}", instance, f"{what} {level}", active, severity, message, keep)
    if kind in _NOT_ALARMS:
        return None
    for suffix, up in (("_fault", True), ("_ok", False), ("_hung", True), ("_recovered", False)):
        if kind.endswith(suffix):
            base = kind[: -len(suffix)]
            base = "driver" if suffix in ("_hung", "_recovered") else base
            return Change(
                f"{instance}/{base}_fault{where}", instance, f"{base} fault{where}", up, severity, message, keep
            )
    if kind == "maintenance_overdue" or kind == "maintenance_done":
        about = (fields.get("work_request") or {}) if kind == "maintenance_overdue" else fields
        asset, plan = about.get("asset"), about.get("plan")
        up = kind == "maintenance_overdue"
        return Change(
            f"{instance}/maintenance/{asset}/{plan}", instance, f"{asset} {plan} overdue", up, severity, message
        )
    if (kind == "calibration_due" and fields.get("overdue")) or kind == "calibrated":
        name = f"calibration{where} overdue"
        return Change(f"{instance}/calibration{where}", instance, name, kind == "calibration_due", severity, message)
    return None


@dataclass(slots=True)
class AlarmRecord:
    """One alarm on the list (times in ms since the epoch)."""

    id: str
    instance: str
    name: str
    severity: str
    active: bool
    acked: bool
    raised_ms: int
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    cleared_ms: int | None = None
    raises: int = 1  # raised this many times since it was last normal
    ack_by: str | None = None
    ack_ms: int | None = None
    ack_comment: str = ""
    shelved_until_ms: int | None = None
    shelved_by: str | None = None
    shelve_comment: str = ""
    raised_by: dict[str, Any] = field(default_factory=dict)  # the raising event's kind and fields

    @property
    def state(self) -> AlarmState:
        if self.active:
            return AlarmState.ACTIVE_ACK if self.acked else AlarmState.ACTIVE_UNACK
        return AlarmState.NORMAL if self.acked else AlarmState.CLEARED_UNACK

    def shelved(self, now_ms: int) -> bool:
        return self.shelved_until_ms is not None and now_ms < self.shelved_until_ms

    def to_wire(self, now_ms: int) -> dict[str, Any]:
        """The record as published and answered: its fields, its state, whether it is shelved now."""
        d = asdict(self)
        d["state"] = str(self.state)
        d["shelved"] = self.shelved(now_ms)
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> AlarmRecord:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})
