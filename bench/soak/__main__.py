"""``python -m bench.soak [--seconds 3600]``: the soak of issue 29, item 5 (see bench/soak/__init__.py)."""

from __future__ import annotations

import argparse
import csv
import pickle
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import machine
from bench.plant.measure import DEFAULT_CONFIG
from bench.plant.process_figures import Metric
from bench.plant.report import RESULTS, fmt, loadavg, write_csv
from bench.soak.agent import Agent
from bench.soak.figures import (
    answer_figures,
    cpu_figures,
    disk_figures,
    event_figures,
    iio_figures,
    iio_losses,
    log_lines,
    memory_figures,
    outage_figures,
    pairs,
    phase,
    quality_figures,
    seq_figures,
    seq_problems,
)
from bench.soak.observer import Event
from bench.soak.run import Soak, run


def main() -> int:
    p = argparse.ArgumentParser(
        description="A soak of the reference plant with faults, outages, clock steps and restarts"
    )
    p.add_argument("--seconds", type=float, default=3600.0, help="run time (default 3600; the scenario scales with it)")
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="s after each agent start not measured (default 300 s per hour, 30 at least)",
    )
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--no-clock", action="store_true", help="no libfaketime: leave the clock steps out")
    p.add_argument("--label", help="name of the result files (default soak<N>)")
    p.add_argument(
        "--out",
        metavar="STEM",
        help="result files STEM.csv and STEM-timeline.csv (default bench/results/<date>-<label>)",
    )
    p.add_argument("--png", metavar="FILE", help="draw the run on one page (matplotlib)")
    p.add_argument(
        "--again", metavar="PICKLE", help="judge a kept run again (/tmp/<stem>.pickle) and rewrite its files"
    )
    args = p.parse_args()
    if args.warmup is None:
        args.warmup = max(30.0, 300.0 * args.seconds / 3600.0)
    label = args.label or f"soak{args.seconds:.0f}"
    stem = Path(args.out) if args.out else RESULTS / f"{datetime.now(UTC).strftime('%Y%m%d-%H%M')}-{label}"
    if args.again:
        soak, load_start, stem = _kept(Path(args.again), args)
        label = args.label or stem.name.split("-", 2)[-1]
    else:
        load_start = loadavg()
        soak = run(args, Path(f"/tmp/{stem.name}-agent.log"))
    if not soak.ticks or soak.msgs.first_data_s is None:
        print("soak: the agent published no data; its log:\n" + soak.log[-3000:], file=sys.stderr)
        return 1
    figures, judged = _figures(soak)
    meta = dict(
        machine(),
        label=label,
        date=datetime.fromtimestamp(soak.t0, UTC).strftime("%Y-%m-%d %H:%M UTC") + " (start)",
        seconds=f"{args.seconds:.0f}",
        warmup_s=f"{args.warmup:.0f}",
        commit=soak.commit,
        broker=soak.broker,
        clock="libfaketime" if not args.no_clock else "real",
        load_start=load_start,
        load_end=soak.load[-1][1] if args.again and soak.load else loadavg(),
        agent_log=f"/tmp/{stem.name}-agent.log",
    )
    _print(meta, figures, judged, soak)
    write_csv(Path(f"{stem}.csv"), meta, figures)
    _timeline(Path(f"{stem}-timeline.csv"), soak, judged)
    if not args.again:
        _keep(soak, Path(f"/tmp/{stem.name}.pickle"))
    print(f"\nwritten {stem}.csv and {stem}-timeline.csv; the agent's log: {meta['agent_log']}")
    if args.png:
        from bench.soak.plot import plot

        load = f"load {vals_load(figures)}"
        plot(soak, Path(args.png), f"bench.soak {label}, commit {soak.commit}, {meta['date']}; {load}")
        print(f"plot: {args.png}")
    vals = {k: v for k, v, _ in figures}
    return 0 if vals.get("seq.gaps") == 0 and vals.get("events.unexpected") == 0 else 1


def vals_load(figures: list[Metric]) -> str:
    """The load average over the run, as the plot's title says it."""
    v = {k: val for k, val, _ in figures}
    return f"{fmt(v['load.1m_min'])}-{fmt(v['load.1m_max'])}, mean {fmt(v['load.1m_mean'])}"


def _keep(soak: Soak, path: Path) -> None:
    """Everything the soak saw, for questions the table does not answer (``pickle.load``)."""
    agent, soak.agent = soak.agent, None
    if agent is not None:
        agent.proc = None
    with open(path, "wb") as f:
        pickle.dump((soak, agent.starts if agent else [], agent.stops if agent else []), f)
    soak.agent = agent


def _kept(path: Path, args: argparse.Namespace) -> tuple[Soak, str, Path]:
    """A run kept by ``_keep``: the soak (its agent's starts and stops), its load at the start, its
    result stem (bench/results/<name of the pickle>); the agent's log is read again."""
    with open(path, "rb") as f:
        soak, starts, stops = pickle.load(f)
    agent = Agent.__new__(Agent)
    agent.starts, agent.stops, agent.faked = starts, stops, soak.faked
    soak.agent = agent
    log = Path(f"/tmp/{path.stem}-agent.log")
    soak.log = log.read_text(errors="replace") if log.exists() else soak.log
    args.seconds, args.warmup = soak.seconds, soak.warmup_s
    return soak, soak.load[0][1] if soak.load else "?", Path(args.out) if args.out else RESULTS / path.stem


def _figures(soak: Soak) -> tuple[list[Metric], list[tuple[Event, str]]]:
    ps = pairs(soak)
    events, judged = event_figures(soak)
    loads = [float(v.split()[0]) for _, v in soak.load]
    load: list[Metric] = [
        ("load.1m_min", min(loads, default=float("nan")), "every minute"),
        ("load.1m_mean", sum(loads) / len(loads) if loads else float("nan"), ""),
        ("load.1m_max", max(loads, default=float("nan")), ""),
    ]
    return (
        load
        + cpu_figures(soak, ps, pairs(soak, faked=True))
        + memory_figures(soak)
        + disk_figures(soak, ps)
        + seq_figures(soak)
        + outage_figures(soak)
        + iio_figures(soak)
        + events
        + answer_figures(soak)
        + quality_figures(soak)
    ), judged


def _print(meta: dict[str, str], figures: list[Metric], judged: list[tuple[Event, str]], soak: Soak) -> None:
    print(
        f"\n{meta['label']}: {meta['seconds']} s, warm-up {meta['warmup_s']} s per start, commit {meta['commit']}, "
        f"{meta['cpu']} x{meta['cores']}; load {meta['load_start']} at the start, {meta['load_end']} at the end"
    )
    for k, v, unit in figures:
        print(f"{k:44} {fmt(v):>12}  {unit}")
    gaps, dups, _ = seq_problems(soak)
    for g in gaps:
        since = (g.before.t - soak.t0, g.after.t - soak.t0)
        print(f"GAP {g.topic} {g.first}..{g.last}: between arrivals at {since[0]:.1f} s and {since[1]:.1f} s")
    for topic, n in dups.items():
        print(f"DUP {topic}: {n}")
    for t, device, n in iio_losses(soak):
        print(f"IIO {device}: {n} scans lost in the 10 s before {t - soak.t0:.0f} s")
    print("\nunexpected events:")
    for ev, why in judged:
        if not why:
            print(f"  {ev.t - soak.t0:7.1f} s  {ev.instance}/{ev.kind}/{ev.severity}: {ev.msg}")
    print("\nlog lines WARNING and worse (digits blanked), by count:")
    for line, n in log_lines(soak).most_common(40):
        print(f"  {n:5}  {line}")


def _timeline(path: Path, soak: Soak, judged: list[tuple[Event, str]]) -> None:
    """One row per minute (load, CPU, memory, writes) and per action and event, in time order."""
    rows: list[tuple[float, str, str, str]] = []
    for t, action, detail in soak.done:
        rows.append((t - soak.t0, "action", action.what, detail))
    for ev, why in judged:
        rows.append(
            (
                ev.t - soak.t0,
                "event",
                f"{ev.instance}/{ev.kind}/{ev.severity}",
                f"{'expected: ' + why if why else 'UNEXPECTED'}; {ev.msg}",
            )
        )
    rows += _minutes(soak)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "type", "name", "detail"])
        for t, kind, name, detail in sorted(rows):
            w.writerow([f"{t:.1f}", kind, name, detail])


def _minutes(soak: Soak) -> list[tuple[float, str, str, str]]:
    out = []
    for t, load in soak.load:
        sim: dict[str, Any] = next((d for ts, d in reversed(soak.sim) if ts <= t), {})
        window = [x for x in soak.ticks if t - 60.0 <= x.t <= t]
        mem = [m for m in soak.mem if t - 60.0 <= m.t <= t]
        detail = f"load {load}; phase {phase(soak, t)}"
        if len(window) >= 2 and window[0].pid == window[-1].pid:
            a, b = window[0], window[-1]
            detail += (
                f"; cpu {100 * (b.cpu_s - a.cpu_s) / (b.t - a.t):.2f} %; rss {b.rss_kb / 1024:.1f} MB"
                f"; writes {(b.write_bytes - a.write_bytes) / (b.t - a.t) * 86400 / 1e6:.1f} MB/day"
            )
        if mem:
            detail += f"; pss {mem[-1].pss_kb / 1024:.1f} MB; uss {mem[-1].uss_kb / 1024:.1f} MB"
        seen = sorted(
            a.ts_ms / 1000.0 - a.t for arr in soak.msgs.arrivals.values() for a in arr if t - 60.0 <= a.t <= t
        )
        if seen:
            detail += f"; agent clock ahead by {seen[len(seen) // 2]:.0f} s (median ts - arrival)"
        lost = sum(d.get("lost", 0) for d in sim.get("iio", {}).values())
        out.append((t - soak.t0, "minute", "look", detail + f"; iio lost so far {lost}"))
    return out


if __name__ == "__main__":
    sys.exit(main())
