"""Reference-plant benchmark and soak: the whole agent, as a user runs it, measured from outside.

Run by hand (``make bench [SECONDS=N] [COMPARE=bench/results/X.csv]``)::

    .venv/bin/python bench/plant.py [--seconds 60 | --soak 600] [--label NAME] [--compare OLD.csv]
                                    [--profile] [--config examples/reference-plant.toml]

Starts a broker (mosquitto on a free port, else the embedded one) and one simulated PLC per local
Modbus TCP instance (the reference layout, wrapped to time every request it serves), writes a
temporary copy of the config (broker URL, PLC port, a fresh state_dir, the system instance's
per-instance counters on), subscribes to ``#``, then runs ``edge-agent run -c COPY`` as a child
process for the given time, samples it every second from /proc, stops it with SIGTERM and prints
one table. The figures are also written to ``bench/results/<date>-<label>.csv`` (``--compare``
prints the differences against an older one). ``--profile`` samples the agent with py-spy after
warm-up and prints the top functions (its CPU figures are then slightly inflated).
"""

from __future__ import annotations

import argparse
import base64
import csv
import itertools
import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ProcSample, machine, percentile, proc_sample, pss_kb, thread_cpu_pct, thread_times, toml_dumps
from edge_agent.agent.devtools.demo_plant import PlantProcess, localize, start_plantsim
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.errors import CodecError
from edge_agent.agent.messaging import codec
from edge_agent.agent.messaging.mqtt_session import set_nodelay
from edge_agent.drivers.simulation.plantsim import send

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_CONFIG = ROOT / "examples" / "reference-plant.toml"
TB_PLC_JSON_B_S = 8400.0  # ThingsBoard IoT Gateway, 500 tags at 1 Hz (the design brief's peer figure)


# -- the plant simulator ---------------------------------------------------------------------------
class SimWatcher:
    """Reads the plant simulator's JSON lines (``edge-agent plantsim --stats-json``): every PLC
    poll it served (arrival, requests, first request in -> last answer out) per instance."""

    def __init__(self, plant: PlantProcess) -> None:
        self.plant = plant
        self.polls: dict[str, list[tuple[float, int, float]]] = defaultdict(list)
        self.final: dict[str, Any] = {}
        threading.Thread(target=self._read, daemon=True, name="sim-watcher").start()

    @property
    def pid(self) -> int:
        return self.plant.proc.pid

    def _read(self) -> None:
        assert self.plant.proc.stdout is not None
        for line in self.plant.proc.stdout:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "poll" in rec:
                self.polls[rec["poll"]].append((float(rec["t"]), int(rec["n"]), float(rec["span_ms"])))
            elif "final" in rec:
                self.final = rec["final"]

    def status(self) -> dict[str, Any]:
        """The simulator's counters now (IIO scans produced and lost), {} if it does not answer."""
        try:
            return send(self.plant.control, {"cmd": "status"})
        except (OSError, ValueError):
            return {}


# -- the config copy ------------------------------------------------------------------------------
@dataclass
class Plant:
    data: dict[str, Any]
    plugin_of: dict[str, str]  # instance -> plugin
    interval_of: dict[str, float] = field(default_factory=dict)  # instance -> s
    sim: SimWatcher | None = None


def prepare(
    config: Path,
    broker_url: str,
    state_dir: str,
    stack: ExitStack,
    only: str = "",
    skip: str = "",
    sets: tuple[str, ...] = (),
    data: dict[str, Any] | None = None,
) -> Plant:
    """Load the config (or take ``data``), start the plant simulator on its devices and point the
    copy at it and at the broker. ``only``/``skip``: comma-separated instance or plugin names to
    keep/leave out."""
    if data is None:
        with open(config, "rb") as f:
            data = tomllib.load(f)
    data["instances"] = [i for i in data.get("instances", []) if _selected(i, only, skip)]
    for assignment in sets:
        _assign(data, assignment)
    data.setdefault("agent", {})["state_dir"] = state_dir
    data.setdefault("mqtt", {})["url"] = broker_url
    plant = Plant(data, {})
    for inst in data.get("instances", []):
        plant.plugin_of[inst["name"]] = inst["plugin"]
        plant.interval_of[inst["name"]] = float(inst.get("interval_s", 1.0))
        if inst["plugin"] == "system":
            inst.setdefault("options", {}).setdefault("include_instances", True)
    simdir = Path(state_dir).parent / "plant"
    simdir.mkdir(parents=True, exist_ok=True)
    if localize(data, simdir, config.absolute().parent):
        plant.sim = SimWatcher(start_plantsim(data, simdir, stack, stats_json=True))
    return plant


def _assign(data: dict[str, Any], assignment: str) -> None:
    """``INSTANCE.path.to.key=TOML value`` (e.g. ``pump1-de.driver.drain_interval_s=0.006``)."""
    path, _, value = assignment.partition("=")
    name, *keys = path.split(".")
    inst = next((i for i in data["instances"] if i["name"] == name), None)
    if inst is None or not keys:
        raise SystemExit(f"--set {assignment}: no instance {name!r} or no key")
    node = inst
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = tomllib.loads(f"v = {value}")["v"]


def _selected(inst: dict[str, Any], only: str, skip: str) -> bool:
    names = {inst["name"], inst["plugin"]}
    if only and not names & set(only.split(",")):
        return False
    return not (skip and names & set(skip.split(",")))


# -- the subscriber -------------------------------------------------------------------------------
Record = tuple[float, str, bytes, int, bool]  # arrival (epoch s), topic, payload, qos, retained


def subscribe(url: str) -> tuple[Any, queue.SimpleQueue[Record]]:
    """A paho client on '#' (QoS 2, so every message arrives with its publish QoS), TCP_NODELAY."""
    import paho.mqtt.client as mqtt
    from edge_agent.agent.messaging.mqtt_session import Endpoint
    from paho.mqtt.enums import CallbackAPIVersion

    ep = Endpoint.parse(url)
    q: queue.SimpleQueue[Record] = queue.SimpleQueue()
    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-plant")
    c.on_socket_open = lambda cl, ud, sock: set_nodelay(sock)
    c.on_connect = lambda cl, ud, flags, rc, props=None: cl.subscribe("#", qos=2)
    c.on_subscribe = lambda cl, ud, mid, rcs, props=None: subscribed.set()
    c.on_message = lambda cl, ud, m: q.put((time.time(), m.topic, bytes(m.payload), m.qos, bool(m.retain)))
    c.connect(ep.host, ep.port, 30)
    c.loop_start()
    if not subscribed.wait(10):
        raise SystemExit(f"could not subscribe on {url}")
    return c, q


def mqtt_publish_bytes(topic: str, payload: bytes, qos: int) -> int:
    """Size of the MQTT 3.1.1 PUBLISH packet: fixed header, topic, packet id (QoS > 0), payload."""
    rem = 2 + len(topic.encode()) + (2 if qos else 0) + len(payload)
    return 1 + max(1, math.ceil(rem.bit_length() / 7)) + rem


def _jsonable(obj: Any, digits: int | None) -> Any:
    """The decoded envelope as JSON can carry it: bytes base64, NaN null, floats as decoded (float32
    widened, as a gateway decoding registers prints them) or cut to ``digits`` significant digits."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, digits) for v in obj]
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else (obj if digits is None else float(f"{obj:.{digits}g}"))
    return obj


def json_bytes(env: dict[str, Any]) -> int:
    """The same content as ``json.dumps`` writes it (the yardstick of the issue)."""
    return len(json.dumps(_jsonable(env, None)).encode())


def json_compact_bytes(env: dict[str, Any]) -> int:
    """The same content as the tightest plain JSON: no spaces, floats to 7 significant digits."""
    return len(json.dumps(_jsonable(env, 7), separators=(",", ":")).encode())


def leaves(d: Any) -> int:
    """Number of values in a (nested) message body."""
    return sum(leaves(v) for v in d.values()) if isinstance(d, dict) else 1


# -- collecting -----------------------------------------------------------------------------------
@dataclass
class Flow:
    """Traffic of one plugin (or of the agent's own topics) inside the measured window."""

    msgs: int = 0
    wire: int = 0
    payload: int = 0
    json: int = 0
    json_compact: int = 0
    values: int = 0
    latency_ms: list[float] = field(default_factory=list)


@dataclass
class Collector:
    plugin_of: dict[str, str]
    window: tuple[float, float] = (math.inf, math.inf)
    flows: dict[str, Flow] = field(default_factory=lambda: defaultdict(Flow))
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    last_seq: dict[str, int] = field(default_factory=dict)
    gaps: Counter[str] = field(default_factory=Counter)
    dups: Counter[str] = field(default_factory=Counter)
    quality: Counter[str] = field(default_factory=Counter)
    quality_window: Counter[str] = field(default_factory=Counter)  # after warm-up
    data_window: Counter[str] = field(default_factory=Counter)  # data messages per instance after warm-up
    events: Counter[str] = field(default_factory=Counter)
    first_data_s: float | None = None
    status: list[str] = field(default_factory=list)
    system: dict[str, Any] = field(default_factory=dict)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)  # data topic -> every value seen, latest
    total: int = 0
    undecodable: int = 0

    def add(self, rec: Record) -> None:
        t, topic, payload, qos, retained = rec
        parts = topic.split("/")
        kind = parts[2] if len(parts) > 2 else ""
        instance = parts[3] if kind in ("data", "event") and len(parts) > 3 else ""
        plugin = self.plugin_of.get(instance, "agent")
        self.total += 1
        try:
            env = codec.decode(payload)
        except CodecError:
            self.undecodable += 1
            return
        if kind == "data" and self.first_data_s is None:
            self.first_data_s = t
        if kind in ("data", "event") and not retained:
            self._seq(topic, int(env["seq"]))
        self._content(kind, plugin, instance, env)
        if self.window[0] <= t <= self.window[1]:
            self._count(t, topic, payload, qos, kind, plugin, env)

    def _seq(self, topic: str, seq: int) -> None:
        last = self.last_seq.get(topic)
        if last is not None and seq <= last:
            self.dups[topic] += 1
            return
        if last is not None and seq > last + 1:
            self.gaps[topic] += seq - last - 1
        self.last_seq[topic] = seq

    def full_json_b_per_s(self, plugin: str, interval_of: dict[str, float]) -> float:
        """JSON of every value every poll (no report by exception), as the peer gateways send."""
        total = 0.0
        for key, state in self.state.items():
            p, _, instance = key.partition("/")
            if p == plugin:
                env = {"v": 1, "ts": 1_700_000_000_000, "seq": 1000, "d": state}
                total += json_bytes(env) / interval_of.get(instance, 1.0)
        return total

    def _content(self, kind: str, plugin: str, instance: str, env: dict[str, Any]) -> None:
        d = env["d"]
        if kind == "data":
            _merge(self.state.setdefault(f"{plugin}/{instance}", {}), d)
            self.quality.update(str(v) for v in _flat_values(env.get("q", {})))
            if plugin == "system":
                self.system = d
        elif kind == "event":
            self.events[f"{d.get('kind')}/{d.get('severity')}"] += 1
        elif kind == "status":
            self.status.append(f"{d.get('state')}:{d.get('reason', '')}")

    def _count(
        self,
        t: float,
        topic: str,
        payload: bytes,
        qos: int,
        kind: str,
        plugin: str,
        env: dict[str, Any],
    ) -> None:
        f = self.flows[plugin]
        if kind == "data":
            self.quality_window.update(str(v) for v in _flat_values(env.get("q", {})))
            self.data_window[topic.rsplit("/", 1)[-1]] += 1
        f.msgs += 1
        f.wire += mqtt_publish_bytes(topic, payload, qos)
        f.payload += len(payload)
        f.json += json_bytes(env)
        f.json_compact += json_compact_bytes(env)
        if kind not in ("data", "event"):
            return
        latency = 1000.0 * t - int(env["ts"])
        if kind == "data":
            f.values += leaves(env["d"])
            f.latency_ms.append(latency)
        cls = "events" if kind == "event" else ("vibration windows" if plugin == "vibration" else "values")
        self.latency[cls].append(latency)


def _merge(into: dict[str, Any], d: dict[str, Any]) -> None:
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def _flat_values(d: Any) -> Iterator[Any]:
    if isinstance(d, dict):
        for v in d.values():
            yield from _flat_values(v)
    else:
        yield d


# -- running --------------------------------------------------------------------------------------
@dataclass
class Run:
    t0: float = 0.0  # process start (epoch s)
    samples: list[tuple[float, ProcSample]] = field(default_factory=list)
    warm_s: float = 0.0  # end of warm-up (epoch s)
    stop_s: float = 0.0  # SIGTERM sent
    exit_s: float = 0.0
    exit_code: int | None = None
    log: str = ""
    profile: str = ""
    imports_kb: int | None = None  # RSS of a fresh interpreter importing the agent's modules
    start_cpu_s: float = math.nan  # agent CPU seconds at the first data message
    pss: list[tuple[float, int]] = field(default_factory=list)  # agent PSS, kB
    sim_samples: list[tuple[float, ProcSample, int]] = field(default_factory=list)  # simulator, with PSS
    threads_warm: tuple[float, dict[int, tuple[str, int]]] | None = None
    threads_end: tuple[float, dict[int, tuple[str, int]]] | None = None
    sim_warm: dict[str, Any] = field(default_factory=dict)  # simulator status at the end of warm-up
    sim_end: dict[str, Any] = field(default_factory=dict)


# Written into a directory put on the agent's PYTHONPATH: at exit the agent lists its modules,
# so the bench can tell the RSS that importing them costs from the RSS the run adds.
# It also gives every Python thread its name at the OS level (prctl PR_SET_NAME, 15 characters), so
# /proc/PID/task/*/comm tells the threads apart (io_0, spool-sync, gpio-sim-pulses, ...).
MODULES_HOOK = """import atexit, ctypes, os, sys, threading
def _edge_bench_modules():
    with open(os.environ["EDGE_BENCH_MODULES"], "w") as f:
        f.write("\\n".join(sys.modules))
atexit.register(_edge_bench_modules)
_libc = ctypes.CDLL(None)
_inner = threading.Thread._bootstrap_inner
def _named(self):
    name = self.name if len(self.name) <= 15 else self.name[:9] + "~" + self.name[-5:]
    _libc.prctl(15, name.encode(), 0, 0, 0)
    _inner(self)
threading.Thread._bootstrap_inner = _named
"""

IMPORT_FLOOR = """import importlib, re, sys
for name in open(sys.argv[1]).read().split():
    if name not in ("__main__", "sitecustomize") and not name.startswith("__editable"):
        try:
            importlib.import_module(name)
        except Exception:
            pass
print(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
"""


def import_floor_kb(modules: Path, env: dict[str, str]) -> int | None:
    """RSS of a fresh interpreter that imports the modules the agent had loaded, running nothing."""
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
    return int(out.stdout.split()[-1]) if out.returncode == 0 and out.stdout.strip() else None


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
    env = dict(
        installed_env(),
        EDGE_AGENT_MQTT_URL=broker_url,
        **dict(e.split("=", 1) for e in args.env),
    )
    site = tmp / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(MODULES_HOOK)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), str(site)) if p)
    env["EDGE_BENCH_MODULES"] = str(tmp / "modules.txt")
    run.t0 = time.time()
    proc = subprocess.Popen(agent_command(config), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    profiler: subprocess.Popen[bytes] | None = None
    try:
        end = run.t0 + args.seconds
        run.start_cpu_s = _until_first_data(proc, q, col, end)
        while time.time() < end and proc.poll() is None:
            _drain(q, col)
            if not run.warm_s and col.first_data_s is not None:
                run.warm_s = col.first_data_s + args.warmup
                col.window = (run.warm_s, math.inf)
            if run.warm_s and args.profile and profiler is None and time.time() >= run.warm_s:
                profiler = start_profiler(proc.pid, max(1, int(end - time.time()) - 1), tmp)
            try:
                now = time.time()
                run.samples.append((now, proc_sample(proc.pid)))
                run.pss.append((now, pss_kb(proc.pid)))
                if run.warm_s and run.threads_warm is None and now >= run.warm_s:
                    run.threads_warm = (now, thread_times(proc.pid))
                    run.sim_warm = sim.status() if sim else {}
                if run.threads_warm is not None:
                    run.threads_end = (now, thread_times(proc.pid))
            except OSError:
                break
            if sim is not None:
                try:
                    run.sim_samples.append((time.time(), proc_sample(sim.pid), pss_kb(sim.pid)))
                except OSError:
                    pass
            time.sleep(max(0.0, 1.0 - (time.time() - run.samples[-1][0])) if run.samples else 1.0)
        run.sim_end = sim.status() if sim else {}
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
    _drain(q, col)
    run.log = (tmp / "agent.log").read_text(errors="replace")
    run.imports_kb = import_floor_kb(tmp / "modules.txt", env)
    return run


def _until_first_data(proc: subprocess.Popen[bytes], q: queue.SimpleQueue[Record], col: Collector, end: float) -> float:
    """Watch closely (every 10 ms) until the first data message; the agent's CPU seconds by then
    (start-up work, which unlike the wall-clock figure does not grow with the machine's load)."""
    cpu = math.nan
    while time.time() < end and proc.poll() is None and col.first_data_s is None:
        try:
            cpu = proc_sample(proc.pid).cpu_s
        except OSError:
            break
        _drain(q, col)
        time.sleep(0.01)
    return cpu


def _stop_agent(proc: subprocess.Popen[bytes], run: Run) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        run.exit_code = proc.wait(30)
    except subprocess.TimeoutExpired:
        run.exit_code = None
    run.exit_s = time.time()


def _drain(q: queue.SimpleQueue[Record], col: Collector) -> None:
    while True:
        try:
            col.add(q.get_nowait())
        except queue.Empty:
            return


# -- profiling ------------------------------------------------------------------------------------
def start_profiler(pid: int, duration_s: int, tmp: Path) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:
        print(
            "note: py-spy not found (pip install py-spy in .venv); no profile",
            file=sys.stderr,
        )
        return None
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(duration_s),
        "--rate",
        "250",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(tmp / "profile.txt"),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp / "py-spy.log", "wb"))


def finish_profiler(profiler: subprocess.Popen[bytes], tmp: Path) -> str:
    try:
        profiler.wait(60)
    except subprocess.TimeoutExpired:
        profiler.kill()
    path = tmp / "profile.txt"
    if not path.exists():
        return "py-spy wrote no profile: " + (tmp / "py-spy.log").read_text(errors="replace")[-500:]
    return summarize_profile(path.read_text(errors="replace"))


WAITS = {
    "Condition.wait",
    "Event.wait",
    "EpollSelector.select",
    "_worker",
    "SimpleQueue.get",
    "Thread.join",
}


def summarize_profile(raw: str, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's folded stacks."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [f.split(" (", 1)[0] + " " + _short(f) for f in stack.split(";")]
        if frames[-1].split(" ", 1)[0] in WAITS:
            continue  # py-spy's idle detection misses short timed waits: a thread asleep is not CPU
        total += int(n)
        own[frames[-1]] += int(n)
        for fr in set(frames):
            incl[fr] += int(n)
    if not total:
        return "no samples"
    lines = [
        f"py-spy: {total} samples (250 Hz) of running threads (waits left out)",
        f"{'self %':>7} {'incl %':>7}  function",
    ]
    for fr, k in own.most_common(top):
        lines.append(f"{100 * k / total:7.1f} {100 * incl[fr] / total:7.1f}  {fr}")
    lines += [
        "",
        f"{'incl %':>7}  function (inclusive, our code and the libraries it calls)",
    ]
    for fr, k in incl.most_common(top + 15):
        lines.append(f"{100 * k / total:7.1f}  {fr}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    loc = frame.rsplit(" (", 1)[-1].rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in loc:
            loc = loc.split(marker, 1)[1]
    return f"({loc})"


# -- figures --------------------------------------------------------------------------------------
Metric = tuple[str, Any, str]  # key, value, unit


def cpu_figures(run: Run) -> list[Metric]:
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
        (
            "rss.growth_pct",
            100.0 * (end.rss_kb - warm.rss_kb) / warm.rss_kb,
            "% after warm-up -> end",
        ),
        ("rss.slope_mb_per_h", _slope_mb_per_h(run), "MB/h over the second half of the window"),
        (
            "rss.imports_mb",
            run.imports_kb / 1024 if run.imports_kb else math.nan,
            "MB: a fresh interpreter importing the agent's modules, running nothing",
        ),
        (
            "rss.above_imports_mb",
            (end.rss_kb - run.imports_kb) / 1024 if run.imports_kb else math.nan,
            "MB: end RSS minus the import floor",
        ),
        ("pss.end_mb", run.pss[-1][1] / 1024 if run.pss else math.nan, "MB (shared pages split)"),
        ("threads.start", start.threads, ""),
        ("threads.end", end.threads, ""),
        ("fds.start", start.fds, ""),
        ("fds.end", end.fds, ""),
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


def flow_figures(col: Collector, seconds: float, interval_of: dict[str, float]) -> list[Metric]:
    out: list[Metric] = []
    tot = Flow()
    tot_full = 0.0
    for plugin in sorted(col.flows):
        f = col.flows[plugin]
        for k in ("msgs", "wire", "payload", "json", "json_compact", "values"):
            setattr(tot, k, getattr(tot, k) + getattr(f, k))
        full = col.full_json_b_per_s(plugin, interval_of) if plugin != "agent" else f.json / seconds
        tot_full += full
        out += _flow_metrics(f"flow.{plugin}", f, seconds, full)
        out.append((f"flow.{plugin}.lat_p99_ms", percentile(f.latency_ms, 99), "ms"))
    out += _flow_metrics("flow.total", tot, seconds, tot_full)
    plc = col.flows.get("plc")
    if plc is not None:
        out.append(
            (
                "plc.wire_pct_of_tb",
                100.0 * plc.wire / seconds / TB_PLC_JSON_B_S,
                "% of 8.4 kB/s",
            )
        )
    return out


def _flow_metrics(key: str, f: Flow, seconds: float, full_json_b_s: float) -> list[Metric]:
    payload_b_s = f.payload / seconds
    return [
        (f"{key}.msgs_per_s", f.msgs / seconds, "msg/s"),
        (f"{key}.values_per_s", f.values / seconds, "values/s"),
        (f"{key}.wire_b_per_s", f.wire / seconds, "B/s MQTT PUBLISH"),
        (f"{key}.payload_b_per_s", payload_b_s, "B/s MessagePack"),
        (f"{key}.json_b_per_s", f.json / seconds, "B/s same messages, json.dumps"),
        (
            f"{key}.vs_json_pct",
            100.0 * f.payload / f.json if f.json else math.nan,
            "% payload of json.dumps",
        ),
        (
            f"{key}.json_compact_b_per_s",
            f.json_compact / seconds,
            "B/s same messages, compact JSON 7 digits",
        ),
        (
            f"{key}.vs_json_compact_pct",
            100.0 * f.payload / f.json_compact if f.json_compact else math.nan,
            "%",
        ),
        (f"{key}.json_full_b_per_s", full_json_b_s, "B/s JSON, every value every poll"),
        (
            f"{key}.vs_json_full_pct",
            100.0 * payload_b_s / full_json_b_s if full_json_b_s else math.nan,
            "%",
        ),
    ]


def latency_figures(col: Collector) -> list[Metric]:
    out: list[Metric] = []
    for cls in ("values", "vibration windows", "events"):
        lat = col.latency.get(cls, [])
        key = "latency." + cls.split()[0]
        out += [
            (f"{key}.n", len(lat), "messages"),
            (f"{key}.p50_ms", percentile(lat, 50), "ms"),
            (f"{key}.p99_ms", percentile(lat, 99), "ms"),
            (f"{key}.max_ms", max(lat, default=math.nan), "ms"),
        ]
    return out


def modbus_figures(plant: Plant, window: tuple[float, float]) -> list[Metric]:
    out: list[Metric] = []
    for instance, served in sorted((plant.sim.polls if plant.sim else {}).items()):
        polls = [(n, span) for t, n, span in served if window[0] <= t <= window[1]]
        spans = [s for _, s in polls]
        key = f"modbus.{instance}"
        out += [
            (f"{key}.polls", len(polls), "in the window"),
            (
                f"{key}.requests_per_poll",
                sum(n for n, _ in polls) / len(polls) if polls else math.nan,
                "",
            ),
            (
                f"{key}.requests_max",
                max((n for n, _ in polls), default=math.nan),
                "per poll",
            ),
            (f"{key}.poll_p50_ms", percentile(spans, 50), "ms (server side)"),
            (f"{key}.poll_p95_ms", percentile(spans, 95), "ms (server side)"),
            (f"{key}.poll_max_ms", max(spans, default=math.nan), "ms (server side)"),
        ]
    return out + modbus_all_figures(plant, window)


def modbus_all_figures(plant: Plant, window: tuple[float, float]) -> list[Metric]:
    """Every PLC together: the worst share of its polls served (is every tag read at its interval,
    e.g. once a second?) and the poll times."""
    served = plant.sim.polls if plant.sim else {}
    if not served:
        return []
    seconds = max(window[1] - window[0], 1e-9)
    ratios = [
        sum(1 for t, _, _ in p if window[0] <= t <= window[1]) * plant.interval_of.get(name, 1.0) / seconds
        for name, p in served.items()
    ]
    spans = [span for p in served.values() for t, _, span in p if window[0] <= t <= window[1]]
    return [
        ("modbus.all.plcs", len(served), "simulated PLCs"),
        (
            "modbus.all.min_poll_ratio",
            min(ratios),
            "polls served / polls due, worst PLC (1.0: every tag at its interval)",
        ),
        ("modbus.all.poll_p50_ms", percentile(spans, 50), "ms (server side, all PLCs)"),
        ("modbus.all.poll_p95_ms", percentile(spans, 95), "ms (server side, all PLCs)"),
    ]


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


# -- output ---------------------------------------------------------------------------------------
def fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else (f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}")
    return str(v)


def print_table(meta: dict[str, str], figures: list[Metric], col: Collector, run: Run) -> None:
    vals = {k: v for k, v, _ in figures}
    print(
        f"\n{meta['label']} ({Path(meta['config']).name}), {meta['seconds']} s ({meta['window_s']} s measured "
        f"after {meta['warmup_s']} s warm-up) on {meta['cpu']} x{meta['cores']}, {meta['os']}, Python {meta['python']}"
        f"; load average {meta['load_start']} at the start, {meta['load_end']} at the end"
    )
    print(f"{'figure':34} {'value':>10}  unit / goal")
    goals = {  # issue 18: agent process only, reference plant
        "cpu.mean_pct": "<= 2.0",
        "cpu.p95_pct": "<= 4",
        "rss.end_mb": "<= 55",
        "rss.above_imports_mb": "<= 6",
        "rss.growth_pct": "< 2 (soak)",
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


def write_csv(path: Path, meta: dict[str, str], figures: list[Metric]) -> None:
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


# -- main -----------------------------------------------------------------------------------------
def _loadavg() -> str:
    """The 1-, 5- and 15-minute load averages (other work on the machine skews CPU figures)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def measure(args: argparse.Namespace, data: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """One run; returns the exit status and the figures by key (``data``: a config instead of --config)."""
    load_start = _loadavg()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-plant-")))
        broker = stack.enter_context(LocalBroker())
        plant = prepare(
            Path(args.config),
            broker.url,
            str(tmp / "state"),
            stack,
            args.only,
            args.skip,
            tuple(args.set),
            data,
        )
        config = tmp / "plant.toml"
        config.write_text(toml_dumps(plant.data))
        client, q = subscribe(broker.url)
        stack.callback(client.loop_stop)
        stack.callback(client.disconnect)
        col = Collector(plant.plugin_of)
        print(
            f"bench: {broker.kind} broker {broker.url}, {len(plant.plugin_of)} instances, "
            f"{len(plant.sim.plant.ready.get('plcs', {})) if plant.sim else 0} simulated PLC(s), "
            f"{len(plant.sim.plant.ready.get('iio', [])) if plant.sim else 0} IIO device(s); "
            f"running the agent for {args.seconds:.0f} s...",
            flush=True,
        )
        commit = git_commit()  # the tree the agent starts from (others may commit during a soak)
        run = run_agent(args, config, broker.url, q, col, tmp, plant.sim)
        if col.first_data_s is None or len(run.samples) < 3:
            print(
                "bench: the agent published no data; its log:\n" + run.log[-3000:],
                file=sys.stderr,
            )
            return 1, {}
        window_s = col.window[1] - col.window[0]
        meta = dict(
            machine(),
            label=args.label,
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            seconds=f"{args.seconds:.0f}",
            warmup_s=f"{args.warmup:.0f}",
            window_s=f"{window_s:.1f}",
            commit=commit,
            broker=broker.kind,
            config=str(args.config),
            env=" ".join(args.env),
            only=args.only,
            skip=args.skip,
            set=" ".join(args.set),
            load_start=load_start,
            load_end=_loadavg(),
            profiled=str(args.profile),
            rss_trace=" ".join(f"{t - run.t0:.0f}s:{x.rss_kb / 1024:.1f}" for t, x in run.samples[::60]),
        )
        figures = (
            cpu_figures(run)
            + thread_figures(run)
            + memory_figures(run, col.first_data_s)
            + sim_figures(run)
            + iio_figures(run)
            + modbus_figures(plant, col.window)
            + lifecycle_figures(run, col)
            + flow_figures(col, window_s, plant.interval_of)
            + latency_figures(col)
        )
        print_table(meta, figures, col, run)
        out = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%d-%H%M')}-{args.label}.csv"
        if not args.no_csv:
            write_csv(out, meta, figures)
            print(f"\nwritten {out.relative_to(ROOT)}")
        if args.compare:
            compare(Path(args.compare), figures)
        ok = sum(col.gaps.values()) + sum(col.dups.values()) == 0 and run.exit_code == 0
        return (0 if ok else 1), {**{f"meta.{k}": v for k, v in meta.items()}, **{k: v for k, v, _ in figures}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="agent run time from process start (default 60)",
    )
    p.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="a soak run of this length (label 'soak<N>')",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="s after the first publish not measured (default 10, 60 for a soak)",
    )
    p.add_argument("--label", help="name of the CSV (default run<N>s / soak<N>)")
    p.add_argument("--compare", metavar="CSV", help="print differences against an older result")
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument(
        "--only",
        default="",
        help="comma-separated instances or plugins to run (cost by part)",
    )
    p.add_argument("--skip", default="", help="comma-separated instances or plugins to leave out")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the agent with py-spy after warm-up",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the agent (experiments: OPENBLAS_NUM_THREADS=1, PYTHONPATH=a patched copy)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="INSTANCE.KEY=VALUE",
        help="change the config copy, e.g. pump1-de.driver.drain_interval_s=0.006 (a TOML value)",
    )
    p.add_argument("--no-csv", action="store_true", help="do not write a result file")
    args = p.parse_args()
    if args.soak:
        args.seconds = args.soak
    if args.warmup is None:
        args.warmup = 60.0 if args.soak else min(10.0, args.seconds / 4)
    if args.label is None:
        args.label = (
            f"soak{args.seconds:.0f}" if args.soak else f"run{args.seconds:.0f}s" + ("-profile" if args.profile else "")
        )
    return measure(args)[0]


if __name__ == "__main__":
    sys.exit(main())
