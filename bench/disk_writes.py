"""Disk writes of the reference plant's agent at steady state, per day and per store (issue 29, item 1).

Run by hand::

    .venv/bin/python -m bench.disk_writes [--seconds 90] [--warmup 20] [--no-strace] [--set KEY=VALUE]

Starts the broker, the plant simulator and the agent as ``bench.plant`` does, waits for the warm-up,
then for ``--seconds`` reads the agent's ``/proc/PID/io`` (``write_bytes``: what the kernel sent to
storage for it; ``wchar``: every byte it handed to write(), sockets included) and traces it with
``strace -f -y -e trace=write,pwrite64,fsync,fdatasync``: the bytes and syncs of each file, named by
the store they belong to. Figures are scaled to a day. A card's wear follows ``write_bytes`` (page
and journal overhead included); the per-file table says who causes it.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

from edge_agent.agent.devtools.local_broker import LocalBroker

from bench.common import toml_dumps
from bench.plant.agent_process import agent_command, installed_env
from bench.plant.config_copy import prepare
from bench.plant.measure import DEFAULT_CONFIG
from bench.plant.report import loadavg

DAY_S = 86400.0
MB = 1e6
# 1234 write(7</tmp/x/state/seq.sqlite-wal>, ""..., 4096) = 4096   (pid prefix with -f)
CALL = re.compile(
    r"^(?:\[pid\s+)?\d*\]?\s*(write|pwrite64|writev|pwritev2?|fsync|fdatasync|ftruncate)\((\d+)<([^>]*)>.*\)\s+=\s+(-?\d+)"
)


def proc_io(pid: int) -> dict[str, int]:
    """The process's I/O counters (all its threads)."""
    return proc_io_path(Path(f"/proc/{pid}/io"))


def thread_writes(pid: int) -> dict[str, int]:
    """write_bytes per thread, by thread name (threads of one name summed)."""
    out: dict[str, int] = defaultdict(int)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            out[name] += proc_io_path(task / "io")["write_bytes"]
        except (OSError, KeyError):
            continue  # the thread ended
    return dict(out)


def proc_io_path(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = int(value)
    return out


def store_of(path: str, state_dir: str) -> str | None:
    """The store a written file belongs to (its path under the state dir), None for sockets and pipes."""
    if not path.startswith("/"):
        return None  # socket:[..], pipe:[..], anon_inode:..
    if path.startswith(state_dir):
        return path[len(state_dir) :].lstrip("/") or "."
    return path


def parse_strace(text: str, state_dir: str) -> dict[str, dict[str, int]]:
    """Bytes, write calls and syncs per file, from ``strace -y`` output."""
    per: dict[str, dict[str, int]] = defaultdict(lambda: {"bytes": 0, "writes": 0, "syncs": 0, "truncates": 0})
    for line in text.splitlines():
        m = CALL.match(line.strip())
        if not m:
            continue
        call, _fd, path, ret = m.groups()
        store = store_of(path, state_dir)
        if store is None or int(ret) < 0:
            continue
        if call in ("fsync", "fdatasync"):
            per[store]["syncs"] += 1
        elif call == "ftruncate":
            per[store]["truncates"] += 1
        else:
            per[store]["bytes"] += int(ret)
            per[store]["writes"] += 1
    return dict(per)


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--seconds", type=float, default=90.0, help="measured time after warm-up (default 90)")
    p.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="s after start not measured (default 60: every topic has appeared and has its second seq block)",
    )
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--set", action="append", default=[], metavar="INSTANCE.KEY=VALUE")
    p.add_argument("--no-strace", action="store_true", help="only /proc/PID/io (no per-file table)")
    args = p.parse_args()
    load_start = loadavg()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-disk-")))
        state_dir = str(tmp / "state")
        broker = stack.enter_context(LocalBroker())
        plant = prepare(Path(args.config), broker.url, state_dir, stack, sets=tuple(args.set))
        config = tmp / "plant.toml"
        config.write_text(toml_dumps(plant.data))
        env = dict(installed_env(), EDGE_AGENT_MQTT_URL=broker.url)
        log = stack.enter_context(open(tmp / "agent.log", "wb"))
        agent = subprocess.Popen(agent_command(config), stdout=log, stderr=subprocess.STDOUT, env=env)
        stack.callback(_stop, agent)
        print(f"bench: agent pid {agent.pid}, warm-up {args.warmup:.0f} s, then {args.seconds:.0f} s measured...")
        time.sleep(args.warmup)
        if agent.poll() is not None:
            print((tmp / "agent.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
        tracer = None if args.no_strace else _start_strace(agent.pid, tmp / "strace.txt")
        io0, th0, t0 = proc_io(agent.pid), thread_writes(agent.pid), time.monotonic()
        time.sleep(args.seconds)
        io1, th1, t1 = proc_io(agent.pid), thread_writes(agent.pid), time.monotonic()
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(10)
        per_file = parse_strace((tmp / "strace.txt").read_text(errors="replace"), state_dir) if tracer else {}
        _report(io0, io1, t1 - t0, per_file, load_start)
        _report_threads(th0, th1, t1 - t0)
    return 0


def _start_strace(pid: int, out: Path) -> subprocess.Popen[bytes]:
    tracer = subprocess.Popen(
        [
            "strace",
            "-f",
            "-qq",
            "-s",
            "0",
            "-y",
            "-p",
            str(pid),
            "-o",
            str(out),
            "-e",
            "trace=write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,ftruncate",
        ],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached to every thread
    return tracer


def _stop(agent: subprocess.Popen[bytes]) -> None:
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def _report(
    io0: dict[str, int], io1: dict[str, int], window_s: float, per_file: dict[str, dict[str, int]], load_start: str
) -> None:
    scale = DAY_S / window_s
    print(f"\nwindow {window_s:.0f} s, load {load_start} -> {loadavg()}")
    for key in ("write_bytes", "wchar", "cancelled_write_bytes"):
        print(f"  {key:22s} {(io1[key] - io0[key]) * scale / MB:10.1f} MB/day")
    if not per_file:
        return
    print(f"\n  {'file (under state dir)':40s} {'MB/day':>9s} {'writes/h':>9s} {'syncs/h':>8s}")
    total = 0
    for name, f in sorted(per_file.items(), key=lambda kv: -kv[1]["bytes"]):
        total += f["bytes"]
        hour = 3600.0 / window_s
        print(f"  {name[-40:]:40s} {f['bytes'] * scale / MB:9.2f} {f['writes'] * hour:9.0f} {f['syncs'] * hour:8.0f}")
    print(f"  {'all files (write() payload)':40s} {total * scale / MB:9.2f}")


def _report_threads(th0: dict[str, int], th1: dict[str, int], window_s: float) -> None:
    print(f"\n  {'thread':40s} {'write_bytes MB/day':>19s}")
    for name in sorted(th1, key=lambda n: th0.get(n, 0) - th1[n]):
        delta = th1[name] - th0.get(name, 0)
        if delta:
            print(f"  {name:40s} {delta * DAY_S / window_s / MB:19.1f}")


if __name__ == "__main__":
    sys.exit(main())
