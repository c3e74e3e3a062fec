"""The result: one table on stdout, a CSV in bench/results/, and the differences against an older CSV."""

from __future__ import annotations

import csv
import math
import subprocess
from pathlib import Path
from typing import Any

from bench.common import ROOT, percentile
from bench.plant.agent_process import Run
from bench.plant.process_figures import Metric
from bench.plant.subscriber import Collector

RESULTS = ROOT / "bench" / "results"


def fmt(v: Any) -> str:
    """A figure as the table prints it: 3 significant digits, '-' for NaN."""
    if isinstance(v, float):
        return "-" if math.isnan(v) else (f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}")
    return str(v)


def print_table(meta: dict[str, str], figures: list[Metric], col: Collector, run: Run) -> None:
    """The figures with their goals, the traffic by plugin, the latencies and what went wrong."""
    vals = {k: v for k, v, _ in figures}
    print(
        f"\n{meta['label']} ({Path(meta['config']).name}), {meta['seconds']} s ({meta['window_s']} s measured "
        f"after {meta['warmup_s']} s warm-up) on {meta['cpu']} x{meta['cores']}, {meta['os']}, Python {meta['python']}"
        f"; load average {meta['load_start']} at the start, {meta['load_end']} at the end"
    )
    print(f"{'figure':34} {'value':>10}  unit / goal")
    goals = {  # issue 29: agent process only, reference plant
        "cpu.mean_pct": "<= 2.0",
        "cpu.p95_pct": "<= 4",
        "rss.end_mb": "<= rss.imports_mb + 10",
        "rss.above_imports_mb": "<= 10",
        "rss.growth_pct": "< 2 (over a soak)",
        "start.first_publish_s": "<= 0.5",
        "seq.gaps": "0",
        "seq.dups": "0",
        "iio.lost_window": "0",
        "plc.wire_pct_of_tb": "<= 5",
        "latency.values.p99_ms": "<= 20",
        "modbus.all.min_poll_ratio": ">= 0.98",
    }
    for k, v, unit in figures:
        if (k.startswith("flow.") and k.split(".")[1] != "total") or k.startswith("latency."):
            continue
        goal = f"  goal {goals[k]}" if goals.get(k) else ""
        print(f"{k:34} {fmt(v):>10}  {unit}{goal}")
    print(
        f"\n{'by plugin':12} {'msg/s':>7} {'values/s':>9} {'wire B/s':>9} {'MsgPack B/s':>11} {'JSON B/s':>9} "
        f"{'vs JSON':>8} {'JSON all/poll':>13} {'vs it':>6} {'lat p50':>8} {'p99':>7} {'max ms':>7}"
    )
    for plugin in [*sorted(col.flows), "total"]:
        f = col.flows.get(plugin)
        key = f"flow.{plugin}"
        lat = f.latency_ms if f else []
        print(
            f"{plugin:12} {fmt(vals[key + '.msgs_per_s']):>7} {fmt(vals[key + '.values_per_s']):>9} "
            f"{fmt(vals[key + '.wire_b_per_s']):>9} {fmt(vals[key + '.payload_b_per_s']):>11} "
            f"{fmt(vals[key + '.json_b_per_s']):>9} {fmt(vals[key + '.vs_json_pct']):>7}% "
            f"{fmt(vals[key + '.json_full_b_per_s']):>13} {fmt(vals[key + '.vs_json_full_pct']):>5}% "
            f"{fmt(percentile(lat, 50)):>8} {fmt(percentile(lat, 99)):>7} {fmt(max(lat, default=math.nan)):>7}"
        )
    print(f"\n{'latency ts -> arrival':22} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for cls in ("values", "vibration", "events"):
        k = f"latency.{cls}"
        print(
            f"{cls:22} {fmt(vals[k + '.n']):>6} {fmt(vals[k + '.p50_ms']):>8} {fmt(vals[k + '.p99_ms']):>8} "
            f"{fmt(vals[k + '.max_ms']):>8}"
        )
    if col.gaps or col.dups:
        print("seq problems:", dict(col.gaps), dict(col.dups))
    if col.quality:
        print("quality codes seen:", dict(col.quality), "after warm-up:", dict(col.quality_window))
    print("data messages per instance after warm-up:", dict(sorted(col.data_window.items())))
    print("events:", dict(col.events) or "none")
    problems = [line for line in run.log.splitlines() if " WARNING " in line or " ERROR " in line]
    if problems:
        print("agent log warnings/errors (last 5):", *problems[-5:], sep="\n  ")
    if run.profile:
        print("\n" + run.profile)
    if run.tasks:
        print("\n" + run.tasks)


def write_csv(path: Path, meta: dict[str, str], figures: list[Metric]) -> None:
    """``metric,value,unit`` rows: the run's description (``meta.*``), then every figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "value", "unit"])
        for k, v in meta.items():
            w.writerow([f"meta.{k}", v, ""])
        for k, v, unit in figures:
            w.writerow([k, f"{v:.6g}" if isinstance(v, float) else v, unit])


def compare(old_path: Path, figures: list[Metric], threshold: float = 0.05) -> None:
    """Print the figures that changed by 5 % or more (and any change from 0)."""
    with open(old_path, newline="") as f:
        old = {row["metric"]: row["value"] for row in csv.DictReader(f)}
    print(f"\ncompared with {old_path.name} ({old.get('meta.label', '?')}, {old.get('meta.date', '?')}):")
    print(f"{'figure':38} {'old':>10} {'new':>10} {'change':>10}")
    for k, v, _ in figures:
        if k not in old or not isinstance(v, (int, float)):
            continue
        try:
            o = float(old[k])
        except ValueError:
            continue
        if o == v or (o and abs(v - o) / abs(o) < threshold):
            continue
        change = f"{100 * (v - o) / abs(o):+.0f}%" if o else f"{v - o:+.3g}"
        if change:
            print(f"{k:38} {fmt(o):>10} {fmt(float(v)):>10} {change:>10}")


def git_commit() -> str:
    """The commit the agent runs from, ``+dirty`` when agent/, drivers/ or plugins/ have changes."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "agent", "drivers", "plugins"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages (other work on the machine skews CPU figures)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
