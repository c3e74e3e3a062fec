"""Cost curves: how the agent's CPU, RSS, poll time and wire bytes grow with the plant.

Run by hand::

    .venv/bin/python -m bench.curves [--seconds 60] [--series tags,accels] [--label NAME]
    .venv/bin/python -m bench.curves --replot bench/results/<date>-curves.csv

Each point is one ``bench.plant`` run (the agent as a child process, the simulated devices in
``edge-agent plantsim``, figures of the agent process only) on a generated config:

- tags: 500, 2,000, 5,000 and 10,000 Modbus tags at 1 Hz: one reference PLC (500 tags), then
  2, 5 and 10 simulated PLCs of 1,000 tags each (``layout = "reference-x2"``);
- accels: 1, 3 and 6 ADXL345s at 3.2 kHz through IIO, and one 25.6 kHz IEPE channel set.

Every point also runs the system plugin (late polls are counted). Each run writes its own CSV
(label ``curve-<point>``); the summary goes to ``bench/results/<date>-curves[-LABEL].csv`` and the plot
to ``docs/performance-curves.png`` (matplotlib, the ``plot`` extra).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import plant
from bench.common import ROOT

PNG = ROOT / "docs" / "performance-curves.png"
SIM_ROOT = "/tmp/edge-plantsim"  # localized to the run's own directory by bench.plant

COLUMNS = [
    ("cpu.mean_pct", "agent CPU % (mean)"),
    ("cpu.p95_pct", "CPU p95 %"),
    ("rss.end_mb", "RSS MB"),
    ("pss.end_mb", "PSS MB"),
    ("rss.above_imports_mb", "RSS above imports MB"),
    ("modbus.all.poll_p50_ms", "poll p50 ms"),
    ("modbus.all.poll_p95_ms", "poll p95 ms"),
    ("modbus.all.min_poll_ratio", "polls served/due (worst PLC)"),
    ("agent.skipped_ticks", "late polls"),
    ("flow.total.wire_b_per_s", "wire B/s"),
    ("latency.values.p99_ms", "1-Hz p99 ms"),
    ("latency.vibration.p99_ms", "window p99 ms"),
    ("iio.lost_window", "scans lost"),
    ("sim.cpu.mean_pct", "simulator CPU %"),
]


def _base(instances: list[dict[str, Any]]) -> dict[str, Any]:
    system = {"name": "system", "plugin": "system", "interval_s": 10}
    return {"agent": {"id": "curve"}, "mqtt": {"url": "mqtt://127.0.0.1:1883"}, "instances": [system, *instances]}


def tags_config(tags: int) -> dict[str, Any]:
    """``tags`` Modbus tags: one 500-tag reference PLC, or PLCs of 1,000 tags each."""
    layout, per_plc = ("reference", 500) if tags <= 500 else ("reference-x2", 1000)
    plcs = []
    for k in range(max(1, tags // per_plc)):
        drv = {
            "type": "modbus",
            "host": "127.0.0.1",
            "port": 15020 + k,
            "timeout_s": 0.5,
            "max_gap": 16,
            "layout": layout,
        }
        plcs.append(
            {"name": f"plc{k + 1}", "plugin": "plc", "interval_s": 1.0, "driver": drv, "options": {"heartbeat_s": 300}}
        )
    return _base(plcs)


def _iio(name: str, k: int, chip: str, rate: float, sim: dict[str, Any]) -> dict[str, Any]:
    drv: dict[str, Any] = {"type": "iio", "sysfs_root": f"{SIM_ROOT}/sys", "dev_dir": f"{SIM_ROOT}/dev"}
    drv.update(device=f"iio:device{k}", rate_hz=rate, sim_chip=chip, sim=sim)
    if chip == "iepe":
        drv.update(sensitivity_mv_per_g=100, axes=["x", "y", "z"])
    return drv


def accels_config(n_3200: int, n_25600: int) -> dict[str, Any]:
    """``n_3200`` ADXL345s at 3.2 kHz (like pump1-nde) and ``n_25600`` IEPE sets at 25.6 kHz (like fan2)."""
    bearing = {"balls": 9, "ball_diameter": 0.3126, "pitch_diameter": 1.537}
    out = []
    for k in range(n_3200):
        drv = _iio(f"pump{k}", k, "adxl345", 3200, {"rpm": 1485, "unbalance_g": 0.04, "seed": k + 1})
        opts = {"machine_group": 2, "speed_source": "spectrum", "speed_range_rpm": [1000, 2000], "bearing": bearing}
        out.append({"name": f"pump{k + 1}", "plugin": "vibration", "interval_s": 1, "driver": drv, "options": opts})
    for k in range(n_25600):
        drv = _iio(
            f"fan{k}", n_3200 + k, "iepe", 25600, {"rpm": 2980, "unbalance_g": 0.1, "noise_g": 0.03, "seed": 50 + k}
        )
        opts = {
            "machine_group": 1,
            "foundation": "flexible",
            "speed_source": "spectrum",
            "speed_range_rpm": [2000, 3600],
        }
        opts.update(envelope_band_hz=[2000, 8000], bearing=bearing)
        out.append({"name": f"fan{k + 1}", "plugin": "vibration", "interval_s": 1, "driver": drv, "options": opts})
    return _base(out)


SERIES: dict[str, list[tuple[str, float, dict[str, Any]]]] = {
    "tags": [(f"tags{n}", n, tags_config(n)) for n in (500, 2000, 5000, 10000)],
    "accels": [
        ("accel3200x1", 1, accels_config(1, 0)),
        ("accel3200x3", 3, accels_config(3, 0)),
        ("accel3200x6", 6, accels_config(6, 0)),
        ("accel25600x1", 1, accels_config(0, 1)),
    ],
}


def run_point(name: str, data: dict[str, Any], seconds: float) -> dict[str, Any]:
    args = argparse.Namespace(
        seconds=seconds,
        warmup=min(10.0, seconds / 4),
        label=f"curve-{name}",
        compare=None,
        config=str(plant.DEFAULT_CONFIG),
        only="",
        skip="",
        profile=False,
        env=[],
        set=[],
        no_csv=False,
        out=None,
    )
    print(f"\n=== {name} ===", flush=True)
    rc, figures = plant.measure(args, data)
    return {"point": name, "rc": rc, **figures}


def write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    keys = ["point", "meta.load_start", "meta.load_end", *[k for k, _ in COLUMNS]]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in keys})


def read_summary(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table for docs/performance.md."""
    head = "| point | load (start / end) | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for r in rows:
        cells = [plant.fmt(_num(r.get(k))) for k, _ in COLUMNS]
        load = f"{str(r.get('meta.load_start', '?')).split()[0]} / {str(r.get('meta.load_end', '?')).split()[0]}"
        lines.append(f"| {r['point']} | {load} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], out: Path) -> None:
    """Two rows of panels: the Modbus series against tags, the accelerometer series against sensors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {r["point"]: r for r in rows}
    tags = [(n, by[p]) for p, n, _ in SERIES["tags"] if p in by]
    acc = [(n, by[p]) for p, n, _ in SERIES["accels"][:3] if p in by]
    fast = by.get("accel25600x1")
    panels = [
        ("cpu.mean_pct", "agent CPU, % of one core"),
        ("rss.end_mb", "agent RSS, MB"),
        ("flow.total.wire_b_per_s", "wire, B/s"),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(15, 7))
    for col, (key, title) in enumerate(panels):
        ax = axes[0][col]
        ax.plot([n for n, _ in tags], [_num(r.get(key)) for _, r in tags], "o-")
        ax.set(title=title, xlabel="Modbus tags at 1 Hz")
        ax = axes[1][col]
        ax.plot([n for n, _ in acc], [_num(r.get(key)) for _, r in acc], "o-", label="ADXL345 at 3.2 kHz")
        if fast is not None:
            ax.plot([1], [_num(fast.get(key))], "s", color="C3", label="one 25.6 kHz set")
        ax.set(title=title, xlabel="accelerometers (3 axes each)")
        ax.legend(fontsize=8, loc="lower right")
    ax = axes[0][3]
    for key, style in (("modbus.all.poll_p50_ms", "o-"), ("modbus.all.poll_p95_ms", "s--")):
        ax.plot([n for n, _ in tags], [_num(r.get(key)) for _, r in tags], style, label=key.split(".")[-1])
    ax.set(title="poll time per PLC, ms (server side)", xlabel="Modbus tags at 1 Hz")
    ax.legend(fontsize=8)
    ax = axes[1][3]
    key = "latency.vibration.p99_ms"
    ax.plot([n for n, _ in acc], [_num(r.get(key)) for _, r in acc], "o-", label="ADXL345 at 3.2 kHz")
    if fast is not None:
        ax.plot([1], [_num(fast.get(key))], "s", color="C3", label="one 25.6 kHz set")
    ax.set(title="feature message latency p99, ms", xlabel="accelerometers (3 axes each)")
    ax.legend(fontsize=8)
    for a in axes.flat:
        a.grid(alpha=0.3)
        a.set_ylim(bottom=0)
    loads = ", ".join(sorted({str(r.get("meta.load_start", "?")).split()[0] for r in rows}))
    fig.suptitle(f"edge-agent cost curves (agent process only; 1-min load averages at the starts: {loads})")
    fig.tight_layout()
    fig.savefig(out, dpi=80)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="each run from process start (default 60)")
    p.add_argument("--series", default="tags,accels", help="comma-separated: tags, accels")
    p.add_argument("--points", default="", help="only these points (e.g. tags10000,accel3200x6)")
    p.add_argument("--label", default="", help="suffix of the summary CSV")
    p.add_argument("--replot", metavar="CSV", help="redraw the table and the PNG from a summary CSV")
    p.add_argument("--png", default=str(PNG))
    args = p.parse_args()
    if args.replot:
        rows = read_summary(Path(args.replot))
    else:
        rows = []
        for series in args.series.split(","):
            for name, _, data in SERIES[series]:
                if not args.points or name in args.points.split(","):
                    rows.append(run_point(name, data, args.seconds))
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        out = plant.RESULTS / f"{stamp}-curves{'-' + args.label if args.label else ''}.csv"
        write_summary(out, rows)
        print(f"\nwritten {out.relative_to(ROOT)}")
    print("\n" + markdown(rows))
    try:
        plot(rows, Path(args.png))
        print(f"plot: {args.png}")
    except ImportError:
        print("no plot: install matplotlib (pip install -e '.[plot]')", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
