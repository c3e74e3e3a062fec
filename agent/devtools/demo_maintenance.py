"""What ``make demo`` adds to show the maintenance duties within a few minutes: shifts of a few
minutes (so a shift report comes out), and a calibration sent as a technician would."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any
from zoneinfo import ZoneInfo

import msgpack

SHIFT_MIN = 3
CALIBRATION = {
    "instance": "thermo-a",
    "args": {
        "channel": "motor_de",
        "by": "demo technician (badge 4711)",
        "points": [[0.4, 0.0], [100.9, 100.0]],  # ice bath and dry-block at 100 degC
        "interval_days": 0.004,  # ~6 min: the demo shows calibration_due and "uncertain" values
        "warn_days": 0.002,
        "uncertain_when_due": True,
        "note": "demo: two-point check against a dry-block calibrator",
    },
}


def short_shifts(data: dict[str, Any], minutes: int = SHIFT_MIN, hours: int = 4) -> list[str]:
    """Give every ``production`` instance shifts of ``minutes`` from now on; return the lines changed."""
    lines = []
    for inst in data.get("instances", []):
        opts = inst.get("options") or {}
        if inst.get("plugin") != "production" or not opts.get("shifts"):
            continue
        now = dt.datetime.now(ZoneInfo(opts.get("timezone", "UTC"))).replace(second=0, microsecond=0)
        start = now - dt.timedelta(minutes=now.minute % minutes)
        shifts = []
        for i in range(hours * 60 // minutes):
            a = start + dt.timedelta(minutes=i * minutes)
            b = a + dt.timedelta(minutes=minutes)
            shifts.append({"name": f"{'ABC'[i % 3]}-{a:%H%M}", "start": f"{a:%H:%M}", "end": f"{b:%H:%M}"})
        opts["shifts"] = shifts
        lines.append(inst["name"])
    return lines


def plant_zone(data: dict[str, Any]) -> str:
    """The plant's time zone: the first ``production`` instance's ``timezone`` (UTC without one)."""
    for inst in data.get("instances", []):
        if inst.get("plugin") == "production":
            return str((inst.get("options") or {}).get("timezone", "UTC"))
    return "UTC"


# the as-left check a technician reads against a reference after applying (recorded on the record)
CHECK = {
    "instance": "thermo-a",
    "args": {
        "channel": "motor_de",
        "by": "demo technician (badge 4711)",
        "action": "check",
        "reference": 60.0,
        "reading": 60.05,
    },
}


def calibrate_later(client: Any, prefix: str, agent_id: str, delay_s: float = 8.0) -> threading.Timer:
    """Send the demo's calibration command after ``delay_s`` (the thermocouples have read by then),
    and its as-left check two seconds later."""
    topic = f"{prefix}/{agent_id}/cmd/calibrate"

    def send() -> None:
        client.publish(topic, msgpack.packb({"id": "demo-cal", **CALIBRATION}), 1)
        check = threading.Timer(2.0, client.publish, (topic, msgpack.packb({"id": "demo-check", **CHECK}), 1))
        check.daemon = True
        check.start()

    timer = threading.Timer(delay_s, send)
    timer.daemon = True
    timer.start()
    return timer
