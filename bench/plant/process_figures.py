"""Figures of the agent process and of the simulator: CPU, memory, threads, IIO scans, start and stop,
sequence numbers and qualities."""

from __future__ import annotations

import itertools
import math
from typing import Any

from bench.common import ProcSample, percentile, thread_cpu_pct
from bench.plant.agent_process import Run
from bench.plant.subscriber import Collector

Metric = tuple[str, Any, str]  # key, value, unit


def cpu_figures(run: Run) -> list[Metric]:
    """The agent's CPU after warm-up, as % of one core (mean, p95 and max of the 1-s samples)."""
    steady = [(t, s) for t, s in run.samples if t >= run.warm_s]
    pcts = [100.0 * (b.cpu_s - a.cpu_s) / (tb - ta) for (ta, a), (tb, b) in itertools.pairwise(steady)]
    mean = 100.0 * (steady[-1][1].cpu_s - steady[0][1].cpu_s) / (steady[-1][0] - steady[0][0]) if pcts else math.nan
    boot = next((s.cpu_s for t, s in run.samples if t >= run.warm_s), math.nan)
    return [
        ("cpu.mean_pct", mean, "% of one core"),
        ("cpu.p95_pct", percentile(pcts, 95), "% of one core"),
        ("cpu.max_pct", max(pcts, default=math.nan), "% of one core"),
        ("cpu.until_warm_s", boot, "CPU s from start to the end of warm-up"),
    ]


def memory_figures(run: Run, first_data_s: float | None) -> list[Metric]:
    """RSS (split into anonymous memory and mapped files), PSS, USS, the import floor, threads and
    open files of the agent process."""
    start = next(
        (s for t, s in run.samples if first_data_s is not None and t >= first_data_s),
        run.samples[0][1],
    )
    warm = next((s for t, s in run.samples if t >= run.warm_s), run.samples[-1][1])
    end = run.samples[-1][1]
    return [
        ("rss.start_mb", start.rss_kb / 1024, "MB at first publish"),
        ("rss.warm_mb", warm.rss_kb / 1024, "MB after warm-up"),
        ("rss.end_mb", end.rss_kb / 1024, "MB"),
        ("rss.max_mb", max(s.rss_kb for _, s in run.samples) / 1024, "MB"),
        ("rss.anon_end_mb", end.rss_anon_kb / 1024, "MB of RSS that is the process's own memory (RssAnon)"),
        ("rss.file_end_mb", end.rss_file_kb / 1024, "MB of RSS that is mapped files: code, shared (RssFile)"),
        (
            "rss.growth_pct",
            100.0 * (end.rss_kb - warm.rss_kb) / warm.rss_kb,
            "% after warm-up -> end",
        ),
        ("rss.slope_mb_per_h", _slope_mb_per_h(run), "MB/h over the second half of the window"),
        *_floor_figures(run, end),
        ("pss.end_mb", run.pss[-1][1] / 1024 if run.pss else math.nan, "MB (shared pages split)"),
        ("uss.end_mb", run.uss[-1][1] / 1024 if run.uss else math.nan, "MB (pages only the agent maps)"),
        ("threads.start", start.threads, ""),
        ("threads.end", end.threads, ""),
        ("fds.start", start.fds, ""),
        ("fds.end", end.fds, ""),
    ]


def _floor_figures(run: Run, end: ProcSample) -> list[Metric]:
    """The import floor and what the run holds above it, in all and in anonymous memory alone (the
    file-backed part of both moves with the kernel's page cache, not with our code)."""
    floor = run.imports
    nan = math.nan
    return [
        (
            "rss.imports_mb",
            floor.rss_kb / 1024 if floor else nan,
            "MB: a fresh interpreter importing the agent's modules, running nothing",
        ),
        ("rss.imports_anon_mb", floor.rss_anon_kb / 1024 if floor else nan, "MB of it anonymous"),
        ("rss.imports_file_mb", floor.rss_file_kb / 1024 if floor else nan, "MB of it mapped files"),
        (
            "rss.above_imports_mb",
            (end.rss_kb - floor.rss_kb) / 1024 if floor else nan,
            "MB: end RSS minus the import floor",
        ),
        (
            "rss.anon_above_imports_mb",
            (end.rss_anon_kb - floor.rss_anon_kb) / 1024 if floor else nan,
            "MB: end RssAnon minus the floor's (the run's own data)",
        ),
    ]


def _slope_mb_per_h(run: Run) -> float:
    """Least-squares slope of RSS over the second half of the measured window (leak or filling?)."""
    steady = [(t, s.rss_kb / 1024) for t, s in run.samples if t >= run.warm_s]
    half = steady[len(steady) // 2 :]
    if len(half) < 120:  # under two minutes a slope is noise (RSS moves by pages and arenas)
        return math.nan
    t_mean = sum(t for t, _ in half) / len(half)
    m_mean = sum(m for _, m in half) / len(half)
    var = sum((t - t_mean) ** 2 for t, _ in half)
    return 3600.0 * sum((t - t_mean) * (m - m_mean) for t, m in half) / var if var else math.nan


def sim_figures(run: Run) -> list[Metric]:
    """The plant simulator process: CPU, RSS, PSS (hardware a Pi does not run)."""
    steady = [(t, s, p) for t, s, p in run.sim_samples if t >= run.warm_s]
    if len(steady) < 2:
        return []
    (t0, a, _), (t1, b, pss) = steady[0], steady[-1]
    return [
        ("sim.cpu.mean_pct", 100.0 * (b.cpu_s - a.cpu_s) / (t1 - t0), "% of one core (the plant simulator)"),
        ("sim.rss.end_mb", b.rss_kb / 1024, "MB"),
        ("sim.pss.end_mb", pss / 1024, "MB"),
    ]


def thread_figures(run: Run) -> list[Metric]:
    """The agent's threads by name: % of one core from schedstat between warm-up and the end."""
    if run.threads_warm is None or run.threads_end is None or run.threads_end[0] <= run.threads_warm[0]:
        return []
    seconds = run.threads_end[0] - run.threads_warm[0]
    pct = thread_cpu_pct(run.threads_warm[1], run.threads_end[1], seconds)
    out: list[Metric] = [(f"thread.{name}.cpu_pct", v, "% of one core (schedstat)") for name, v in pct.items()]
    return [*out, ("thread.all.cpu_pct", sum(pct.values()), "% of one core, sum of the threads")]


def iio_figures(run: Run) -> list[Metric]:
    """Accelerometer scans the simulator produced and lost to a full kernel buffer after warm-up."""
    warm, end = run.sim_warm.get("iio", {}), run.sim_end.get("iio", {})
    out: list[Metric] = []
    for name in sorted(end):
        lost = end[name]["lost"] - warm.get(name, {}).get("lost", 0)
        produced = end[name]["produced"] - warm.get(name, {}).get("produced", 0)
        out += [
            (f"iio.{name}.lost_window", lost, "scans lost after warm-up"),
            (f"iio.{name}.produced_window", produced, "scans"),
        ]
    if end:
        out.append(
            (
                "iio.lost_window",
                sum(v for k, v, _ in out if k.endswith(".lost_window")),
                "scans lost after warm-up, all devices",
            )
        )
    return out


def lifecycle_figures(run: Run, col: Collector) -> list[Metric]:
    """Start and stop, sequence numbers, qualities and what the system plugin and the log reported."""
    skipped = sum(int(v.get("skipped", 0)) for v in col.system.get("instances", {}).values())
    errors = sum(int(v.get("errors", 0)) for v in col.system.get("instances", {}).values())
    bad = sum(n for code, n in col.quality.items())
    warnings = sum(1 for line in run.log.splitlines() if " WARNING " in line or " ERROR " in line)
    return [
        (
            "start.first_publish_s",
            (col.first_data_s or math.nan) - run.t0,
            "s process start -> first data",
        ),
        ("start.online_s", (col.online_s or math.nan) - run.t0, "s process start -> 'online' status (connected)"),
        ("start.first_instance", col.first_data_instance or "-", "the instance whose data came first"),
        ("start.cpu_s", run.start_cpu_s, "CPU s the agent used until its first data (10-ms ticks)"),
        ("stop.clean_s", run.exit_s - run.stop_s, "s SIGTERM -> exit"),
        (
            "stop.exit_code",
            run.exit_code if run.exit_code is not None else "timeout",
            "",
        ),
        (
            "stop.offline_seen",
            int(any(s.startswith("offline:stopped") for s in col.status)),
            "status offline",
        ),
        ("seq.gaps", sum(col.gaps.values()), "missing numbers, data+event topics"),
        ("seq.dups", sum(col.dups.values()), "repeated numbers"),
        ("seq.topics", len(col.last_seq), "topics checked"),
        ("quality.not_good", bad, "values with a quality code, whole run"),
        ("quality.not_good_window", sum(col.quality_window.values()), "the same after warm-up (dropped samples)"),
        ("agent.skipped_ticks", skipped, "late polls (system plugin)"),
        ("agent.instance_errors", errors, "(system plugin)"),
        (
            "agent.dropped",
            int(col.system.get("dropped", 0)),
            "messages (system plugin)",
        ),
        ("agent.log_warnings", warnings, "WARNING/ERROR lines"),
        ("msgs.undecodable", col.undecodable, ""),
    ]
