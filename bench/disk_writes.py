"""Disk writes of the reference plant's agent at steady state and during a broker outage, per day
and per store, against the budget (issue 29, item 2).

Run by hand::

    .venv/bin/python -m bench.disk_writes [--seconds 90] [--warmup 60] [--no-strace] [--set KEY=VALUE]
    .venv/bin/python -m bench.disk_writes --outage [--seconds 600]   # the broker stopped for the window

Starts the broker, the plant simulator and the agent as ``bench.plant`` does, waits for the warm-up,
then for ``--seconds`` reads the agent's ``/proc/PID/io`` (``write_bytes``: what the kernel sent to
storage for it; ``wchar``: every byte it handed to write(), sockets included) and traces it with
``strace -f -y -e trace=write,pwrite64,fsync,fdatasync``: the bytes and syncs of each file, named by
the store they belong to. Figures are scaled to a day. A card's wear follows ``write_bytes`` (page
and journal overhead included); the per-file table says who causes it, the per-store table adds an
estimate of the device bytes of each store (distinct 4-kB pages written between two syncs of a
file). The budget line counts the recorder's captures at most at their ``daily_mb``: a short
window that holds one capture would otherwise scale it to hundreds of MB a day. With ``--outage``
the broker is stopped for the window, then started again, and the spool's write amplification is
reported over the whole cycle (spooling and drain): bytes written to ``spool/`` per byte of
message (payload + topic) spooled.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.messaging.spool_segments import MSG, BadFrame, frames, unpack_row

from bench.common import toml_dumps
from bench.plant.agent_process import agent_command, installed_env
from bench.plant.config_copy import prepare
from bench.plant.measure import DEFAULT_CONFIG
from bench.plant.report import loadavg

DAY_S = 86400.0
MB = 1e6
PAGE = 4096
BUDGET_MB_DAY = 50.0  # the product's target: <= 50 MB/day at steady state with every store on
DAILY_MB_DEFAULT = 20.0  # the recorder's daily_mb default (plugins/recorder)
# 1234 write(7</tmp/x/state/seq.sqlite-wal>, ""..., 4096) = 4096   (pid prefix with -f)
CALL = re.compile(
    r"^(?:\[pid\s+)?\d*\]?\s*(write|pwrite64|writev|pwritev2?|fsync|fdatasync|ftruncate)\((\d+)<([^>]*)>.*\)\s+=\s+(-?\d+)"
)
PWRITE_OFFSET = re.compile(r",\s*(\d+)\)\s+=\s+-?\d+\s*$")
# a state-dir file -> its store (first match)
STORES = (
    ("spool/", "spool"),
    ("spool.sqlite", "spool"),
    ("seq.sqlite", "seq"),
    ("history.sqlite", "history"),
    ("maintenance.sqlite", "maintenance"),
    ("captures/", "captures"),
    ("alarms.json", "alarms"),
    ("audit.sqlite", "audit"),
    ("sparkplug", "sparkplug"),
    ("applied-config", "config"),
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
    """Bytes, write calls, syncs and an estimate of the 4-kB pages reaching the device per file,
    from ``strace -y`` output. Pages: the distinct pages a file's writes touched between two of its
    syncs (pwrite64 at its offset; write() as an append from where the file's writes reached)."""
    per: dict[str, dict[str, int]] = defaultdict(
        lambda: {"bytes": 0, "writes": 0, "syncs": 0, "truncates": 0, "pages": 0}
    )
    dirty: dict[str, set[int]] = defaultdict(set)
    ends: dict[str, int] = defaultdict(int)
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
            per[store]["pages"] += len(dirty.pop(store, ()))
        elif call == "ftruncate":
            per[store]["truncates"] += 1
        else:
            n = int(ret)
            per[store]["bytes"] += n
            per[store]["writes"] += 1
            off = PWRITE_OFFSET.search(line) if call == "pwrite64" else None
            start = int(off.group(1)) if off else ends[store]
            ends[store] = start + n
            dirty[store].update(range(start // PAGE, (start + max(n, 1) - 1) // PAGE + 1))
    for store, pages in dirty.items():
        per[store]["pages"] += len(pages)
    return dict(per)


def store_name(file: str) -> str:
    """The store a file under the state dir belongs to ("other" if none)."""
    for prefix, store in STORES:
        if file.startswith(prefix) or file.lstrip(".").startswith(prefix):
            return store
        if "/" in prefix and file.startswith(prefix.rstrip("/")):
            return store
    return "other" if not file.startswith("/") else "outside the state dir"


def per_store(per_file: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"bytes": 0, "writes": 0, "syncs": 0, "pages": 0})
    for name, f in per_file.items():
        s = out[store_name(name)]
        for key in s:
            s[key] += f.get(key, 0)
    return dict(out)


def daily_mb_of(data: dict[str, Any]) -> float:
    """The smallest ``daily_mb`` of the config's recorder instances (the capture store's budget)."""
    budgets = [
        float((i.get("options") or {}).get("daily_mb", DAILY_MB_DEFAULT))
        for i in data.get("instances", [])
        if i.get("plugin") == "recorder"
    ]
    return min(budgets) if budgets else 0.0


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
    p.add_argument("--outage", action="store_true", help="the broker stopped for the window, then the drain")
    p.add_argument("--drain-s", type=float, default=180.0, help="--outage: wait at most this long for the drain")
    p.add_argument("--keep-state", metavar="DIR", help="copy the agent's state dir here at the end (to look into)")
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
        what = "broker stopped" if args.outage else "measured"
        print(f"bench: agent pid {agent.pid}, warm-up {args.warmup:.0f} s, then {args.seconds:.0f} s {what}...")
        time.sleep(args.warmup)
        if agent.poll() is not None:
            print((tmp / "agent.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
        watcher = SpoolWatcher(Path(state_dir) / "spool") if args.outage else None
        if args.outage:
            broker.stop()
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
        if per_file:
            _report_stores(per_file, t1 - t0, "during the outage" if args.outage else "steady state")
        if watcher is not None:
            drain = _drain(agent.pid, broker, Path(state_dir) / "spool", tmp / "strace-drain.txt", args, state_dir)
            _report_amplification(per_file, drain, watcher.stop())
        elif per_file:
            _report_budget(io0, io1, t1 - t0, per_file, daily_mb_of(plant.data))
        if args.keep_state:
            shutil.copytree(state_dir, args.keep_state, dirs_exist_ok=True)
    return 0


class SpoolWatcher:
    """Reads every message frame the spool writes (each segment's new tail, twice a second) to
    count the messages spooled: payload + topic of each id once, acknowledged or not."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.sizes: dict[int, int] = {}
        self._read_to: dict[Path, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.poll()

    def poll(self) -> None:
        for path in sorted(self.spool.glob("*.seg")) if self.spool.exists() else []:
            start = self._read_to.get(path, 0)
            try:
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read()
            except OSError:
                continue  # drained and deleted meanwhile
            try:
                for _o, end, kind, body in frames(data):
                    self._read_to[path] = start + end
                    if kind == MSG:
                        row = unpack_row(body)
                        self.sizes[row[0]] = len(row[6]) + len(row[1])
            except BadFrame:
                continue  # a frame being written: read again next time

    def stop(self) -> int:
        """Stop; bytes of the messages spooled."""
        self._stop.set()
        self._thread.join(5)
        self.poll()
        return sum(self.sizes.values())


def _drain(
    pid: int, broker: LocalBroker, spool: Path, out: Path, args: argparse.Namespace, state_dir: str
) -> dict[str, dict[str, int]]:
    """Start the broker again and trace the agent until the spool has drained (no segment left)."""
    tracer = None if args.no_strace else _start_strace(pid, out)
    broker.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.drain_s and any(spool.glob("*.seg")):
        time.sleep(1.0)
    time.sleep(2.0)  # the last acknowledgements' commit
    print(f"\ndrain: {time.monotonic() - t0:.0f} s, segments left: {len(list(spool.glob('*.seg')))}")
    if tracer is None:
        return {}
    tracer.send_signal(signal.SIGINT)
    tracer.wait(10)
    return parse_strace(out.read_text(errors="replace"), state_dir)


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


def _report_stores(per_file: dict[str, dict[str, int]], window_s: float, what: str) -> None:
    """Per store: write() payload, estimated device bytes (pages written between syncs), calls."""
    scale, hour = DAY_S / window_s / MB, 3600.0 / window_s
    stores = per_store(per_file)
    print(f"\n  per store, {what} (device: distinct 4-kB pages written between syncs, an estimate)")
    print(f"  {'store':24s} {'write() MB/day':>15s} {'device MB/day':>14s} {'writes/h':>9s} {'syncs/h':>8s}")
    for name, s in sorted(stores.items(), key=lambda kv: -kv[1]["pages"]):
        print(
            f"  {name:24s} {s['bytes'] * scale:15.2f} {s['pages'] * PAGE * scale:14.2f}"
            f" {s['writes'] * hour:9.0f} {s['syncs'] * hour:8.0f}"
        )
    inside = [s for n, s in stores.items() if n != "outside the state dir"]
    print(
        f"  {'all stores':24s} {sum(s['bytes'] for s in inside) * scale:15.2f}"
        f" {sum(s['pages'] for s in inside) * PAGE * scale:14.2f}"
    )


def _report_budget(
    io0: dict[str, int], io1: dict[str, int], window_s: float, per_file: dict[str, dict[str, int]], daily_mb: float
) -> None:
    """write_bytes against the budget: the stores without the captures as measured, plus the
    captures at their daily_mb (a plant that triggers often writes that much; a short window
    holds one capture or none, which no rate can be taken from)."""
    scale = DAY_S / window_s / MB
    total = (io1["write_bytes"] - io0["write_bytes"]) * scale
    captures = per_store(per_file).get("captures", {}).get("bytes", 0) * scale
    ceiling = total - captures + daily_mb
    verdict = "within" if ceiling <= BUDGET_MB_DAY else "OVER"
    print(f"\n  budget: <= {BUDGET_MB_DAY:.0f} MB/day at steady state, every store on (kernel's count, write_bytes)")
    print(f"  {'write_bytes in the window':40s} {total:9.1f} MB/day")
    print(f"  {'captures in the window':40s} {captures:9.1f} MB/day at this window's rate")
    print(f"  {'without the captures':40s} {total - captures:9.1f} MB/day")
    print(f"  {'captures at their ceiling, daily_mb':40s} {daily_mb:9.1f} MB/day")
    print(f"  {'for the budget':40s} {ceiling:9.1f} MB/day: {verdict} the budget")


def _report_amplification(outage: dict[str, dict[str, int]], drain: dict[str, dict[str, int]], spooled: int) -> None:
    """The spool's bytes (outage and drain) per byte of message spooled."""
    spool_out, spool_drain = per_store(outage).get("spool", {}), per_store(drain).get("spool", {})
    written = spool_out.get("bytes", 0) + spool_drain.get("bytes", 0)
    pages = spool_out.get("pages", 0) + spool_drain.get("pages", 0)
    print("\n  spool write amplification over the outage and the drain (goal <= 2x)")
    print(f"  {'messages spooled (payload + topic; drain too)':40s} {spooled / MB:9.2f} MB")
    drained = spool_drain.get("bytes", 0) / MB
    print(f"  {'written to spool/ by write()':40s} {written / MB:9.2f} MB  (of it in the drain: {drained:.3f})")
    if spooled:
        print(f"  {'amplification, write()':40s} {written / spooled:9.2f}x")
        print(f"  {'amplification, device (est.)':40s} {pages * PAGE / spooled:9.2f}x")


def _report_threads(th0: dict[str, int], th1: dict[str, int], window_s: float) -> None:
    print(f"\n  {'thread':40s} {'write_bytes MB/day':>19s}")
    for name in sorted(th1, key=lambda n: th0.get(n, 0) - th1[n]):
        delta = th1[name] - th0.get(name, 0)
        if delta:
            print(f"  {name:40s} {delta * DAY_S / window_s / MB:19.1f}")


if __name__ == "__main__":
    sys.exit(main())
