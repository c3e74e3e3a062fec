"""A shift report as a text table (``edge-agent report``) (the one-page PNG of ``--png``: agent/ops/plots.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

ZONE_TEXT = {"A": "A good", "B": "B acceptable", "C": "C unsatisfactory", "D": "D damage"}


def pct(v: Any) -> str:
    return "-" if not isinstance(v, (int, float)) else f"{100 * v:.1f} %"


def _dur(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    s = round(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def num(v: Any, fmt: str = "{:.4g}") -> str:
    return "-" if not isinstance(v, (int, float)) else fmt.format(v)


def sections(r: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The report as titled lists of (label, value) rows: one source for the table and the PNG."""
    p = r.get("production") or {}
    out: list[tuple[str, list[tuple[str, str]]]] = []
    out.append(
        (
            "OEE",
            [
                ("OEE", pct(p.get("oee"))),
                ("availability", pct(p.get("availability"))),
                ("performance", pct(p.get("performance"))),
                ("quality", pct(p.get("quality"))),
            ],
        )
    )
    out.append(
        (
            "Parts",
            [
                ("good", str(p.get("count_good", "-"))),
                ("scrap", str(p.get("count_scrap", "-"))),
                ("total", str(p.get("count_total", "-"))),
            ],
        )
    )
    times = [
        (k.removesuffix("_s").replace("_", " "), _dur(p.get(k)))
        for k in ("running_s", "idle_s", "fault_s", "planned_stop_s")
        if k in p
    ]
    out.append(("Time per state", times))
    down = [(str(reason), _dur(s)) for reason, s in p.get("downtime_top") or []]
    out.append(("Downtime by reason (top 5)", down or [("none", "")]))
    energy = (
        [
            ("energy", num(p.get("energy_kwh"), "{:.3f} kWh")),
            ("idle energy", num(p.get("idle_energy_kwh"), "{:.3f} kWh")),
            ("per good part", num(p.get("kwh_per_good_part"), "{:.4f} kWh")),
        ]
        if "energy_kwh" in p
        else []
    )
    out.append(("Energy", energy or [("no meter configured", "")]))
    raised = len(r["alarms"]) if isinstance(r.get("alarms"), list) else r.get("alarms_raised", 0)
    out.append((f"Alarms raised: {raised}", _alarms(r)))
    out.append(("Vibration: worst ISO 20816 zone, faults diagnosed", _vibration(r)))
    out.append(("Not monitored", _not_monitored(r)))
    if r.get("clock_steps"):  # only then: the times in the report are the corrected clock's
        out.append(("Clock steps (times per state are time that passed)", _clock_steps(r)))
    temps = [
        (ch, f"{e['count']} x {', '.join(str(x) for x in e['levels'])}")
        for ch, e in sorted((r.get("temperature_alarms") or {}).items())
    ]
    out.append(("Temperature alarms", temps or [("none", "")]))
    due = [(f"{d['asset']}: {d['task']}", str(d["status"]).upper()) for d in r.get("maintenance_due") or []]
    out.append(("Maintenance due", due or [("nothing due", "")]))
    return out


def zone_of(r: dict[str, Any]) -> dt.tzinfo:
    """The plant's time zone of a report (its ``time_zone``; UTC when unknown)."""
    try:
        return ZoneInfo(str(r.get("time_zone") or "UTC"))
    except (ValueError, KeyError, OSError):  # zoneinfo raises several kinds for an unknown key
        return dt.UTC


def local(r: dict[str, Any], ms: Any, fmt: str = "%H:%M") -> str:
    """A UTC time in ms as the plant's local time."""
    if not isinstance(ms, (int, float)):
        return "?"
    return dt.datetime.fromtimestamp(ms / 1000, zone_of(r)).strftime(fmt)


def _alarms(r: dict[str, Any]) -> list[tuple[str, str]]:
    """Each alarm: local time, instance and what, then how long (or still active at the end)."""
    listed = r.get("alarms")
    if listed is None:  # a report from before the list: counts per instance
        return [(inst, str(n)) for inst, n in sorted((r.get("alarms_by_instance") or {}).items())] or [("none", "")]
    rows = [(f"{local(r, a.get('raised_ms'))} {a.get('instance')}: {a.get('name')}", _lasted(a)) for a in listed]
    return rows or [("none", "")]


def _lasted(e: dict[str, Any]) -> str:
    return _dur(e.get("duration_s")) + (" (active at end)" if e.get("active_at_end") else "")


def _vibration(r: dict[str, Any]) -> list[tuple[str, str]]:
    """Per vibration instance: the worst zone, then each bearing fault or machine diagnosis beside it."""
    zones = r.get("worst_iso_zone") or {}
    diags = r.get("diagnoses") or []
    rows: list[tuple[str, str]] = []
    for inst in sorted(set(zones) | {str(d.get("instance")) for d in diags}):
        rows.append((inst, ZONE_TEXT.get(zones.get(inst, ""), zones.get(inst, "no zone"))))
        for d in (d for d in diags if d.get("instance") == inst):
            conf = d.get("confidence")
            what = f"{d.get('name')}" + (f" ({float(conf):.2f})" if isinstance(conf, (int, float)) else "")
            rows.append((f"  {what}", f"from {local(r, d.get('raised_ms'))}, {_lasted(d)}"))
    return rows or [("no vibration data", "")]


def _not_monitored(r: dict[str, Any]) -> list[tuple[str, str]]:
    nm = r.get("not_monitored")
    if nm is None:
        return [("not recorded", "")]
    rows = [
        (
            f"{local(r, p.get('from_ms'))}-{local(r, p.get('to_ms'))} {p.get('what')}: {p.get('reason')}",
            _dur(p.get("duration_s")),
        )
        for p in sorted(nm.get("periods") or [], key=lambda p: p.get("from_ms") or 0)
    ]
    return rows or [("monitored throughout", "")]


def _clock_steps(r: dict[str, Any]) -> list[tuple[str, str]]:
    """Each step of the agent's wall clock in the shift: when (after it) and by how much."""
    rows = []
    for c in r.get("clock_steps") or []:
        step = float(c.get("step_s") or 0)
        way = "forward" if step > 0 else "back"
        rows.append((f"{local(r, c.get('to_ms'), '%d.%m %H:%M')} clock stepped {way}", _dur(abs(step))))
    return rows


def _when(iso: Any) -> str:
    text = str(iso or "?")
    return text[:16].replace("T", " ")


def title(r: dict[str, Any]) -> str:
    return f"Shift report {r.get('line')} - shift {r.get('shift')}"


def period(r: dict[str, Any]) -> str:
    """The shift's start and end in the plant's time zone (a report without one: as recorded)."""
    start_ms, end_ms = _utc_ms(r.get("started_utc")), _utc_ms(r.get("ended_utc"))
    if start_ms is None or end_ms is None:
        end, start = _when(r.get("ended")), _when(r.get("started"))
        offset = str(r.get("started") or "")[19:]
        zone = "UTC" if offset in ("+00:00", "Z") else f"UTC{offset}" if offset else ""
        return f"{start} .. {end[11:] if start[:10] == end[:10] else end} {zone}".rstrip()
    start, end = local(r, start_ms, "%Y-%m-%d %H:%M"), local(r, end_ms, "%Y-%m-%d %H:%M")
    name = str(r.get("time_zone") or "UTC")
    return f"{start} .. {end[11:] if start[:10] == end[:10] else end} {name} ({local(r, start_ms, '%Z')})"


def _utc_ms(iso: Any) -> int | None:
    try:
        return round(dt.datetime.fromisoformat(str(iso)).timestamp() * 1000)
    except ValueError:
        return None


def table(r: dict[str, Any]) -> str:
    """Plain text, one section after another."""
    head = f"{title(r)}, {period(r)}"
    lines = [head, "=" * len(head)]
    for head, rows in sections(r):
        lines += ["", head]
        width = max((len(a) for a, _ in rows), default=0)
        lines += [f"  {a:<{width}}  {b}".rstrip() for a, b in rows]
    return "\n".join(lines)
