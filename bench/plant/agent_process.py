"""The agent as a child process (``edge-agent run``), sampled from /proc every second until the time is
up, then stopped with SIGTERM."""

from __future__ import annotations

import argparse
import math
import os
import queue
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, ProcSample, proc_sample, pss_kb, smaps_rollup_kb, thread_times, uss_kb
from bench.plant.config_copy import SimWatcher
from bench.plant.profiler import finish_profiler, start_profiler
from bench.plant.subscriber import Collector, Record, drain
from bench.plant.task_cpu import TASKS_HOOK, summarize_tasks


@dataclass
class Run:
    """What one run of the agent left: /proc samples, its threads, the simulator's counters, its log."""

    t0: float = 0.0  # process start (epoch s)
    samples: list[tuple[float, ProcSample]] = field(default_factory=list)
    warm_s: float = 0.0  # end of warm-up (epoch s)
    stop_s: float = 0.0  # SIGTERM sent
    exit_s: float = 0.0
    exit_code: int | None = None
    log: str = ""
    profile: str = ""
    tasks: str = ""  # --tasks: CPU by loop callback and lane job (bench/plant/task_cpu.py)
    imports: ProcSample | None = None  # a fresh interpreter importing the agent's modules (RSS, anon, file)
    start_cpu_s: float = math.nan  # agent CPU seconds at the first data message
    pss: list[tuple[float, int]] = field(default_factory=list)  # agent PSS, kB
    uss: list[tuple[float, int]] = field(default_factory=list)  # agent USS (private pages), kB
    sim_samples: list[tuple[float, ProcSample, int]] = field(default_factory=list)  # simulator, with PSS
    threads_warm: tuple[float, dict[int, tuple[str, int]]] | None = None
    threads_end: tuple[float, dict[int, tuple[str, int]]] | None = None
    sim_warm: dict[str, Any] = field(default_factory=dict)  # simulator status at the end of warm-up
    sim_end: dict[str, Any] = field(default_factory=dict)


# Written into a directory put on the agent's PYTHONPATH: at exit the agent lists its modules, so
# the bench can tell the RSS that importing them costs from the RSS the run adds. It only registers
# an atexit function; the agent names its own threads at the OS level (edge_agent.drivers.named_thread).
MODULES_HOOK = """import atexit, os, sys
def _edge_bench_modules():
    with open(os.environ["EDGE_BENCH_MODULES"], "w") as f:
        f.write("\\n".join(sys.modules))
atexit.register(_edge_bench_modules)
"""

IMPORT_FLOOR = """import importlib, re, sys
for name in open(sys.argv[1]).read().split():
    if name not in ("__main__", "sitecustomize") and not name.startswith("__editable"):
        try:
            importlib.import_module(name)
        except Exception:
            pass
status = open("/proc/self/status").read()
print(*(re.search(key + r":\\s+(\\d+)", status).group(1) for key in ("VmRSS", "RssAnon", "RssFile")))
"""


def import_floor(modules: Path, env: dict[str, str]) -> ProcSample | None:
    """RSS (anonymous, mapped files) of a fresh interpreter that imports the modules the agent had
    loaded, running nothing. Taken right after the run, so the shared libraries' pages sit in the
    page cache as they did for the agent (their resident size depends on it: see docs/performance.md)."""
    if not modules.exists():
        return None
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_FLOOR, str(modules)],
        env=dict(env, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    if out.returncode != 0 or len(out.stdout.split()) < 3:
        return None
    rss, anon, file = (int(x) for x in out.stdout.split()[-3:])
    return ProcSample(math.nan, rss, 1, 0, anon, file)


def installed_env() -> dict[str, str]:
    """The environment an installed agent has: without PYTHONDONTWRITEBYTECODE (a shell or CI may
    set it), so the agent loads compiled bytecode as from a wheel instead of compiling about 70 of
    our modules at every start (0.1 s of CPU before the first publish). The tree is compiled once here."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "agent", "drivers", "plugins"], cwd=ROOT, env=env, check=False
    )
    return env


def agent_command(config: Path) -> list[str]:
    """``edge-agent run -c CONFIG`` as installed in this interpreter's environment."""
    exe = Path(sys.executable).parent / "edge-agent"
    return (
        [str(exe), "run", "-c", str(config)]
        if exe.exists()
        else [sys.executable, "-m", "edge_agent.agent", "run", "-c", str(config)]
    )


def run_agent(
    args: argparse.Namespace,
    config: Path,
    broker_url: str,
    q: queue.SimpleQueue[Record],
    col: Collector,
    tmp: Path,
    sim: SimWatcher | None = None,
) -> Run:
    """Start the agent, sample it (and the simulator) every second until the time is up, stop it
    with SIGTERM."""
    run = Run()
    log = open(tmp / "agent.log", "wb")  # noqa: SIM115 - closed below
    env = _agent_env(args, broker_url, tmp)
    run.t0 = time.time()
    proc = subprocess.Popen(agent_command(config), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    profiler: subprocess.Popen[bytes] | None = None
    tasks_started = False
    try:
        end = run.t0 + args.seconds
        run.start_cpu_s = _until_first_data(proc, q, col, end)
        while time.time() < end and proc.poll() is None:
            drain(q, col)
            if not run.warm_s and col.first_data_s is not None:
                run.warm_s = col.first_data_s + args.warmup
                col.window = (run.warm_s, math.inf)
            if run.warm_s and getattr(args, "tasks", False) and not tasks_started and time.time() >= run.warm_s:
                tasks_started = True
                proc.send_signal(signal.SIGUSR2)  # the --tasks hook counts from here
            if run.warm_s and args.profile and profiler is None and time.time() >= run.warm_s:
                profiler = start_profiler(proc.pid, max(1, int(end - time.time()) - 1), tmp)
            try:
                _sample(run, proc.pid, sim)
            except OSError:
                break  # the agent is gone
            time.sleep(max(0.0, 1.0 - (time.time() - run.samples[-1][0])) if run.samples else 1.0)
        run.sim_end = sim.status() if sim else {}
        if tasks_started:
            proc.send_signal(signal.SIGUSR2)  # --tasks: the count ends before the stop's own work
            time.sleep(0.1)
        run.stop_s = time.time()
        col.window = (col.window[0], run.stop_s)
        _stop_agent(proc, run)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if profiler is not None:
            run.profile = finish_profiler(profiler, tmp)
    time.sleep(1.0)
    drain(q, col)
    run.log = (tmp / "agent.log").read_text(errors="replace")
    if getattr(args, "tasks", False):
        run.tasks = summarize_tasks(tmp / "tasks.json")
    run.imports = import_floor(tmp / "modules.txt", env)
    return run


def _agent_env(args: argparse.Namespace, broker_url: str, tmp: Path) -> dict[str, str]:
    """The agent's environment: as installed, the broker, ``--env``, and the module-list hook."""
    env = dict(installed_env(), EDGE_AGENT_MQTT_URL=broker_url, **dict(e.split("=", 1) for e in args.env))
    site = tmp / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(MODULES_HOOK + (TASKS_HOOK if getattr(args, "tasks", False) else ""))
    if getattr(args, "tasks", False):
        env["EDGE_BENCH_TASKS"] = str(tmp / "tasks.json")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), str(site)) if p)
    env["EDGE_BENCH_MODULES"] = str(tmp / "modules.txt")
    return env


def _sample(run: Run, pid: int, sim: SimWatcher | None) -> None:
    """One look at the agent (raises OSError once it is gone) and at the simulator."""
    now = time.time()
    run.samples.append((now, proc_sample(pid)))
    rollup = smaps_rollup_kb(pid)
    run.pss.append((now, rollup.get("Pss", 0)))
    run.uss.append((now, uss_kb(rollup)))
    if run.warm_s and run.threads_warm is None and now >= run.warm_s:
        run.threads_warm = (now, thread_times(pid))
        run.sim_warm = sim.status() if sim else {}
    if run.threads_warm is not None:
        run.threads_end = (now, thread_times(pid))
    if sim is not None:
        try:
            run.sim_samples.append((time.time(), proc_sample(sim.pid), pss_kb(sim.pid)))
        except OSError:
            pass  # the simulator's figures are a side note; the agent's run goes on


def _until_first_data(proc: subprocess.Popen[bytes], q: queue.SimpleQueue[Record], col: Collector, end: float) -> float:
    """Watch closely (every 10 ms) until the first data message; the agent's CPU seconds by then
    (start-up work, which unlike the wall-clock figure does not grow with the machine's load)."""
    cpu = math.nan
    while time.time() < end and proc.poll() is None and col.first_data_s is None:
        try:
            cpu = proc_sample(proc.pid).cpu_s
        except OSError:
            break
        drain(q, col)
        time.sleep(0.01)
    return cpu


def _stop_agent(proc: subprocess.Popen[bytes], run: Run) -> None:
    """SIGTERM, then wait (30 s at most) for the exit code."""
    proc.send_signal(signal.SIGTERM)
    try:
        run.exit_code = proc.wait(30)
    except subprocess.TimeoutExpired:
        run.exit_code = None
    run.exit_s = time.time()
