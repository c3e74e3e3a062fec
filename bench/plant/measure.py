"""One benchmark run from start to table: broker, simulator, config copy, subscriber, the agent, figures."""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.agent.devtools.local_broker import LocalBroker

from bench.common import ROOT, machine, toml_dumps
from bench.plant.agent_process import Run, run_agent
from bench.plant.config_copy import Plant, prepare
from bench.plant.process_figures import (
    Metric,
    cpu_figures,
    iio_figures,
    lifecycle_figures,
    memory_figures,
    sim_figures,
    thread_figures,
)
from bench.plant.report import RESULTS, compare, git_commit, loadavg, print_table, write_csv
from bench.plant.subscriber import Collector, subscribe
from bench.plant.traffic_figures import flow_figures, latency_figures, modbus_figures

DEFAULT_CONFIG = ROOT / "examples" / "reference-plant.toml"


def measure(args: argparse.Namespace, data: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """One run; returns the exit status and the figures by key (``data``: a config instead of --config)."""
    load_start = loadavg()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-plant-")))
        broker = stack.enter_context(LocalBroker())
        plant = prepare(
            Path(args.config), broker.url, str(tmp / "state"), stack, args.only, args.skip, tuple(args.set), data
        )
        config = tmp / "plant.toml"
        config.write_text(toml_dumps(plant.data))
        client, q = subscribe(broker.url)
        stack.callback(client.loop_stop)
        stack.callback(client.disconnect)
        col = Collector(plant.plugin_of)
        _announce(broker, plant, args.seconds)
        commit = git_commit()  # the tree the agent starts from (others may commit during a soak)
        run = run_agent(args, config, broker.url, q, col, tmp, plant.sim)
        if col.first_data_s is None or len(run.samples) < 3:
            print("bench: the agent published no data; its log:\n" + run.log[-3000:], file=sys.stderr)
            return 1, {}
        meta = _meta(args, run, col, broker.kind, commit, load_start)
        figures = _figures(run, col, plant)
        print_table(meta, figures, col, run)
        _save(args, meta, figures)
        ok = sum(col.gaps.values()) + sum(col.dups.values()) == 0 and run.exit_code == 0
        return (0 if ok else 1), {**{f"meta.{k}": v for k, v in meta.items()}, **{k: v for k, v, _ in figures}}


def _announce(broker: LocalBroker, plant: Plant, seconds: float) -> None:
    ready = plant.sim.plant.ready if plant.sim else {}
    print(
        f"bench: {broker.kind} broker {broker.url}, {len(plant.plugin_of)} instances, "
        f"{len(ready.get('plcs', {}))} simulated PLC(s), {len(ready.get('iio', []))} IIO device(s); "
        f"running the agent for {seconds:.0f} s...",
        flush=True,
    )


def _meta(
    args: argparse.Namespace, run: Run, col: Collector, broker: str, commit: str, load_start: str
) -> dict[str, str]:
    """How the figures were taken: the machine, the run's options, the load, the RSS every minute."""
    return dict(
        machine(),
        label=args.label,
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        seconds=f"{args.seconds:.0f}",
        warmup_s=f"{args.warmup:.0f}",
        window_s=f"{col.window[1] - col.window[0]:.1f}",
        commit=commit,
        broker=broker,
        config=str(args.config),
        env=" ".join(args.env),
        only=args.only,
        skip=args.skip,
        set=" ".join(args.set),
        load_start=load_start,
        load_end=loadavg(),
        profiled=str(args.profile),
        rss_trace=" ".join(f"{t - run.t0:.0f}s:{x.rss_kb / 1024:.1f}" for t, x in run.samples[::60]),
        anon_trace=" ".join(f"{t - run.t0:.0f}s:{x.rss_anon_kb / 1024:.1f}" for t, x in run.samples[::60]),
    )


def _figures(run: Run, col: Collector, plant: Plant) -> list[Metric]:
    return (
        cpu_figures(run)
        + thread_figures(run)
        + memory_figures(run, col.first_data_s)
        + sim_figures(run)
        + iio_figures(run)
        + modbus_figures(plant, col.window)
        + lifecycle_figures(run, col)
        + flow_figures(col, col.window[1] - col.window[0], plant.interval_of)
        + latency_figures(col)
    )


def _save(args: argparse.Namespace, meta: dict[str, str], figures: list[Metric]) -> None:
    """The CSV (unless --no-csv) and the comparison with an older one (--compare)."""
    out = Path(args.out) if args.out else RESULTS / f"{datetime.now(UTC).strftime('%Y%m%d-%H%M')}-{args.label}.csv"
    if not args.no_csv:
        write_csv(out, meta, figures)
        print(f"\nwritten {out}")
    if args.compare:
        compare(Path(args.compare), figures)
