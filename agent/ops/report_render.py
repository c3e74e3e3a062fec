"""A shift report as a text table (``edge-agent report``) and as a one-page PNG (``--png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ZONE_TEXT = {"A": "A good", "B": "B acceptable", "C": "C unsatisfactory", "D": "D damage"}


def _pct(v: Any) -> str:
    return "-" if not isinstance(v, (int, float)) else f"{100 * v:.1f} %"


def _dur(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    s = round(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _num(v: Any, fmt: str = "{:.4g}") -> str:
    return "-" if not isinstance(v, (int, float)) else fmt.format(v)


def sections(r: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The report as titled lists of (label, value) rows: one source for the table and the PNG."""
    p = r.get("production") or {}
    out: list[tuple[str, list[tuple[str, str]]]] = []
    out.append(
        (
            "OEE",
            [
                ("OEE", _pct(p.get("oee"))),
                ("availability", _pct(p.get("availability"))),
                ("performance", _pct(p.get("performance"))),
                ("quality", _pct(p.get("quality"))),
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
            ("energy", _num(p.get("energy_kwh"), "{:.3f} kWh")),
            ("idle energy", _num(p.get("idle_energy_kwh"), "{:.3f} kWh")),
            ("per good part", _num(p.get("kwh_per_good_part"), "{:.4f} kWh")),
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


def png(r: dict[str, Any], path: Path) -> None:
    """One A4-portrait page: the headline figures large, then every section (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.27, 11.69), dpi=100)
    fig.text(0.05, 0.965, title(r), fontsize=14, weight="bold", va="top")
    fig.text(0.05, 0.94, period(r), fontsize=10, va="top", color="#555555")
    p = r.get("production") or {}
    big = [
        ("OEE", _pct(p.get("oee"))),
        ("good", str(p.get("count_good", "-"))),
        ("scrap", str(p.get("count_scrap", "-"))),
        ("kWh/part", _num(p.get("kwh_per_good_part"), "{:.4f}")),
    ]
    for i, (label, value) in enumerate(big):
        x = 0.05 + i * 0.23
        fig.text(x, 0.90, value, fontsize=22, weight="bold", va="top", color="#1f4e79")
        fig.text(x, 0.865, label, fontsize=10, va="top", color="#555555")
    ax = fig.add_axes((0.62, 0.66, 0.33, 0.17))
    states = [
        (k.removesuffix("_s"), float(p.get(k) or 0)) for k in ("running_s", "idle_s", "fault_s", "planned_stop_s")
    ]
    colors = {"running": "#2e7d32", "idle": "#f9a825", "fault": "#c62828", "planned_stop": "#78909c"}
    ax.barh([s for s, _ in states], [v / 60 for _, v in states], color=[colors[s] for s, _ in states])
    ax.set_xlabel("minutes")
    ax.set_title("time per state", fontsize=9)
    ax.tick_params(labelsize=8)
    y, col_x = 0.60, 0.52  # the OEE factors under the chart, then everything else in the left column
    oee_rows = sections(r)[0][1]
    fig.text(col_x, y, "OEE factors", fontsize=10, weight="bold", va="top")
    for a, b in oee_rows[1:]:
        y -= 0.022
        fig.text(col_x + 0.01, y, a, fontsize=9, va="top")
        fig.text(col_x + 0.30, y, b, fontsize=9, va="top")
    y = 0.82
    col_x = 0.05
    for head, rows in sections(r)[1:]:
        if head == "Time per state":
            continue
        need = 0.022 * (len(rows) + 1) + 0.012
        if y - need < 0.03:
            y, col_x = 0.48, 0.52
        fig.text(col_x, y, head, fontsize=10, weight="bold", va="top")
        y -= 0.022
        for a, b in rows:
            color = "#c62828" if b in ("OVERDUE", "D damage", "C unsatisfactory") else "#222222"
            fig.text(col_x + 0.01, y, a[:48], fontsize=9, va="top")
            fig.text(col_x + 0.30, y, b, fontsize=9, va="top", color=color)
            y -= 0.022
        y -= 0.012
    fig.text(0.05, 0.015, f"record {r.get('record_id') or r.get('id')} - edge-agent", fontsize=7, color="#888888")
    fig.savefig(path)
    plt.close(fig)
