"""A shift report as a text table (``edge-agent report``) (the one-page PNG of ``--png``: agent/ops/plots.py)."""

from __future__ import annotations

from typing import Any

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
    alarms = [(inst, str(n)) for inst, n in sorted((r.get("alarms_by_instance") or {}).items())]
    out.append((f"Alarms raised: {r.get('alarms_raised', 0)}", alarms or [("none", "")]))
    zones = [(inst, ZONE_TEXT.get(z, z)) for inst, z in sorted((r.get("worst_iso_zone") or {}).items())]
    out.append(("Worst ISO 10816 vibration zone", zones or [("no vibration data", "")]))
    temps = [
        (ch, f"{e['count']} x {', '.join(str(x) for x in e['levels'])}")
        for ch, e in sorted((r.get("temperature_alarms") or {}).items())
    ]
    out.append(("Temperature alarms", temps or [("none", "")]))
    due = [(f"{d['asset']}: {d['task']}", str(d["status"]).upper()) for d in r.get("maintenance_due") or []]
    out.append(("Maintenance due", due or [("nothing due", "")]))
    return out


def _when(iso: Any) -> str:
    text = str(iso or "?")
    return text[:16].replace("T", " ")


def title(r: dict[str, Any]) -> str:
    return f"Shift report {r.get('line')} - shift {r.get('shift')}"


def period(r: dict[str, Any]) -> str:
    end = _when(r.get("ended"))
    start = _when(r.get("started"))
    same_day = start[:10] == end[:10]
    offset = str(r.get("started") or "")[19:]
    zone = "UTC" if offset in ("+00:00", "Z") else f"UTC{offset}" if offset else ""
    return f"{start} .. {end[11:] if same_day else end} {zone}".rstrip()


def table(r: dict[str, Any]) -> str:
    """Plain text, one section after another."""
    head = f"{title(r)}, {period(r)}"
    lines = [head, "=" * len(head)]
    for head, rows in sections(r):
        lines += ["", head]
        width = max((len(a) for a, _ in rows), default=0)
        lines += [f"  {a:<{width}}  {b}".rstrip() for a, b in rows]
    return "\n".join(lines)
