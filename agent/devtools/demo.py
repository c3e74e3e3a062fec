"""``edge-agent demo``: a simulated plant end to end on one machine, with no hardware.

Starts a broker (mosquitto on a free port, else the embedded one), the plant simulator
(``edge-agent plantsim``: the PLC over Modbus TCP and the accelerometers as IIO devices, served
from another process, see agent/devtools/demo_plant.py), the agent in this process on the reference plant,
and a live view of what reaches the broker: a refreshing table on a terminal, plain lines otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import shutil
import socket
import sys
import tempfile
import time
import tomllib
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import build
from edge_agent.agent.devtools.demo_maintenance import SHIFT_MIN, calibrate_later, plant_zone, short_shifts
from edge_agent.agent.devtools.demo_panel import start_panel
from edge_agent.agent.devtools.demo_plant import localize, start_plantsim
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.errors import ConfigError
from edge_agent.agent.ops.tail import decode_line, subscribe
from edge_agent.agent.runtime.bootstrap import build_runtime
from edge_agent.agent.runtime.runtime import Runtime
from edge_agent.drivers.dotted_keys import flatten

ROOT = Path(__file__).resolve().parents[2]  # the checkout (agent/devtools/demo.py)
DEFAULT_CONFIG = ROOT / "examples" / "reference-plant.toml"
FALLBACK = {
    "instances": [
        {"name": "system", "plugin": "system", "interval_s": 5},
        {
            "name": "sine",
            "plugin": "values",
            "interval_s": 1,
            "driver": {"type": "sim", "profile": "sine", "channels": 2, "amplitude": 10.0},
        },
    ]
}


# What a technician looks at first; everything else follows, cut at the terminal width.
FIRST = (
    "iso_zone",
    "velocity_rms_mm_s",
    "fault",
    "ratio_db",
    "temp_c",
    "rate_c_per_min",
    "alarm",
    "state",
    "oee",
    "rpm",
    "count",
    "rate_parts_per_min",
)


def _ordered(d: dict[str, Any]) -> list[tuple[str, Any]]:
    """Flattened values, the most telling first."""
    flat = flatten(d)

    def rank(key: str) -> int:
        return next((i for i, word in enumerate(FIRST) if word in key), len(FIRST))

    return sorted(flat.items(), key=lambda kv: rank(kv[0]))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict) and "bytes" in v:
        return f"<{v['bytes']} B>"
    return str(v)


class LiveView:
    """Keeps the latest message and counters per instance, plus recent events."""

    def __init__(self, *, plain: bool) -> None:
        self.plain = plain
        self.instances: dict[str, dict[str, Any]] = {}
        self.events: deque[str] = deque(maxlen=10)
        self.logs: deque[str] = deque(maxlen=4)
        self.footer: list[str] = []  # how to act on the demo (e.g. the plant simulator's fault switch)
        self.status = "waiting for the agent..."
        self.hints: list[str] = []  # lines kept under the header (the table redraws the screen)
        self.bytes = 0
        self.total = 0
        self.started = time.monotonic()

    def add(self, rec: dict[str, Any], size: int) -> None:
        parts = rec["topic"].split("/")
        self.total += 1
        self.bytes += size
        kind, name = (parts[2], parts[3]) if len(parts) >= 4 else (parts[-1], "")
        if kind == "status":
            self.status = f"agent {parts[1]} is {rec.get('d', {}).get('state', '?')}"
        elif kind == "data":
            row = self.instances.setdefault(name, {"n": 0})
            row.update(n=row["n"] + 1, seq=rec.get("seq"), at=time.monotonic(), d=rec.get("d", {}), q=rec.get("q", {}))
        elif kind == "event":
            d = rec.get("d", {})
            line = f"{time.strftime('%H:%M:%S')} {name}: [{d.get('severity')}] {d.get('kind')}: {d.get('msg')}"
            self.events.append(line)
            if self.plain:
                print("EVENT " + line, flush=True)

    def add_raw(self, topic: str, payload: bytes, retain: bool) -> None:
        """Decode one message and add it (call on the event loop only)."""
        self.add(decode_line(topic, payload, retain), len(payload))

    def render(self) -> str:
        width = max(80, os.get_terminal_size().columns if sys.stdout.isatty() else 120)
        up = time.monotonic() - self.started
        lines = [
            f"edge-agent demo | {self.status} | {self.total} msgs, {self.bytes / max(up, 1):.0f} B/s | Ctrl-C to stop",
            *self.hints,
            "",
        ]
        lines.append(f"{'instance':16} {'msgs':>5} {'seq':>6} {'age':>5}  latest values")
        for name in sorted(self.instances):
            r = self.instances[name]
            vals = ", ".join(f"{k}={_fmt(v)}" + (f"[{r['q'][k]}]" if k in r["q"] else "") for k, v in _ordered(r["d"]))
            age = time.monotonic() - r["at"]
            lines.append(f"{name:16} {r['n']:5d} {r['seq']:6d} {age:4.1f}s  {vals}"[:width])
        lines += ["", "recent events:"] + [f"  {e}"[:width] for e in self.events or ["  (none yet)"]]
        if self.logs:
            lines += ["", "agent log:"] + [f"  {x}"[:width] for x in self.logs]
        if self.footer:
            lines += ["", *(x[:width] for x in self.footer)]
        return "\n".join(lines)


class _ViewLog(logging.Handler):
    def __init__(self, view: LiveView) -> None:
        super().__init__(logging.WARNING)
        self.view = view

    def emit(self, record: logging.LogRecord) -> None:
        self.view.logs.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def _served(ready: dict[str, Any]) -> str:
    parts = [f"PLC {n} on port {p}" for n, p in ready.get("plcs", {}).items()]
    parts += [f"IIO {n}" for n in ready.get("iio", [])] + [f"serial {n}" for n in ready.get("serial", {})]
    return ", ".join(parts) or "nothing"


def default_config() -> Path:
    """The reference plant: beside the code in a checkout, else in ./examples.

    An installed release (a wheel, as on a Pi) carries no examples/: from a checkout or an unpacked
    source tree the demo still finds it in the current directory.
    """
    for path in (DEFAULT_CONFIG, Path.cwd() / "examples" / "reference-plant.toml"):
        if path.exists():
            return path
    return DEFAULT_CONFIG


def _load(config: str | None) -> dict[str, Any]:
    path = Path(config) if config else default_config()
    if path.exists():
        with open(path, "rb") as f:
            return tomllib.load(f)
    if config:
        raise FileNotFoundError(config)
    print(
        "demo: no examples/reference-plant.toml here (an installed release carries none): running a"
        " two-instance simulated config; --config PATH runs the reference plant or your own",
        file=sys.stderr,
    )
    return dict(FALLBACK)


def _feed_view(client: Any, early: queue.Queue[Any], view: LiveView) -> None:
    """Route the view's messages through the event loop: paho calls ``on_message`` on its network
    thread, and the loop iterates the view's dicts while rendering, so only the loop may change them."""
    loop = asyncio.get_running_loop()

    def on_message(c: Any, u: Any, m: Any) -> None:
        payload = bytes(m.payload)
        loop.call_soon_threadsafe(view.add_raw, m.topic, payload, bool(m.retain))

    client.on_message = on_message
    while True:  # what arrived before the loop ran (subscribe() queued it); scheduled ones come later
        try:
            topic, payload, retain = early.get_nowait()
        except queue.Empty:
            break
        if not topic.startswith("$"):
            view.add_raw(topic, bytes(payload), bool(retain))


async def _run(make: Callable[[], Runtime], view: LiveView, seconds: float | None, feed: Callable[[], None]) -> int:
    feed()
    rt = make()  # on this loop: the agent's sessions bind to it
    task = asyncio.create_task(rt.run(), name="agent")
    if seconds:
        asyncio.get_running_loop().call_later(seconds, rt.stop)
    tty = sys.stdout.isatty() and not view.plain
    last_plain = 0.0
    while not task.done():
        await asyncio.sleep(1.0)
        if tty:
            sys.stdout.write("\x1b[H\x1b[2J" + view.render() + "\n")
            sys.stdout.flush()
        elif time.monotonic() - last_plain >= 5:
            last_plain = time.monotonic()
            for name, r in sorted(view.instances.items()):
                print(
                    f"DATA {name}: {r['n']} msgs, seq {r['seq']}, "
                    + ", ".join(f"{k}={_fmt(v)}" for k, v in _ordered(r["d"])[:6]),
                    flush=True,
                )
    return task.result()


def _state_dir(keep: str | None, stack: ExitStack) -> str:
    """A fresh temporary state directory, or ``keep`` (created once, reused by the next run)."""
    if keep is None:
        return str(stack.enter_context(tempfile.TemporaryDirectory(prefix="edge-demo-")))
    path = Path(keep).absolute()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return str(path)


def _edge_agent() -> str:
    """How to type ``edge-agent`` in another terminal: the bare name when it is on PATH, else its path."""
    mine = Path(sys.executable).parent / "edge-agent"
    on_path = shutil.which("edge-agent")
    if on_path is not None and Path(on_path).resolve() == mine.resolve():
        return "edge-agent"
    if mine.exists():
        try:
            return str(mine.relative_to(Path.cwd()))
        except ValueError:
            return str(mine)
    return "edge-agent"


def _how_to_reach() -> str:
    """The line that tells a person where ``edge-agent`` is (make demo does not change their PATH)."""
    cmd = _edge_agent()
    if cmd == "edge-agent":
        return "edge-agent is on your PATH"
    return f"edge-agent is {cmd} (not on PATH: type that, or `source {Path(cmd).parent}/activate` first)"


def run_demo(
    *,
    seconds: float | None = None,
    config: str | None = None,
    plain: bool = False,
    panel: bool = True,
    keep: str | None = None,
) -> int:
    """Run the demo; returns the exit code (0 after --seconds or Ctrl-C). ``keep``: a state
    directory kept between runs (calibrations, counters, captures and reports persist)."""
    logging.basicConfig(level=logging.WARNING, handlers=[logging.NullHandler()])
    reg = load_registry()
    data = _load(config)
    view = LiveView(plain=plain or not sys.stdout.isatty())
    logging.getLogger().addHandler(_ViewLog(view))
    with ExitStack() as stack:
        tmp = _state_dir(keep, stack)
        broker = stack.enter_context(LocalBroker())
        kept = (
            " (kept: run `make demo KEEP=1` again to see it persist)" if keep else " (removed at exit; KEEP=1 keeps it)"
        )
        print(f"demo: {broker.kind} broker on {broker.url}; state in {tmp}{kept}", flush=True)
        print(f"demo: {_how_to_reach()}", flush=True)
        src = Path(config) if config else default_config()
        if localize(data, Path(tmp) / "plant", src.absolute().parent):
            (Path(tmp) / "plant").mkdir(exist_ok=True)
            plant = start_plantsim(data, Path(tmp) / "plant", stack)
            example = next(iter(plant.ready.get("iio", [])), "INSTANCE")
            view.footer = [
                f"simulated hardware: `edge-agent plantsim` serves {_served(plant.ready)}",
                f"in another terminal: {_edge_agent()} plantsim fault {example} inner"
                "   (none/outer/inner/ball; plc INSTANCE busy|silent|ok; status)",
            ]
            print("demo: " + "\ndemo: ".join(view.footer), flush=True)
        data.setdefault("agent", {})["state_dir"] = tmp
        demo_lines = short_shifts(data)  # shift reports within minutes (agent/devtools/demo_maintenance.py)
        data["agent"].setdefault("id", socket.gethostname().split(".")[0])
        try:
            cfg = build(data, reg, source=str(src), base_dir=src.absolute().parent)
        except ConfigError as exc:
            print("\n".join(["demo: invalid config:", *exc.errors]), file=sys.stderr)
            return 1
        client, early = subscribe(broker.url, [f"{cfg.mqtt.prefix}/{cfg.agent_id}/#"], client_id="edge-demo-view")
        stack.callback(client.loop_stop)
        if any(i.plugin.name == "temperature" for i in cfg.instances) and demo_lines:
            stack.callback(calibrate_later(client, cfg.mqtt.prefix, cfg.agent_id).cancel)
            report = f"{_edge_agent()} report {cfg.agent_id} --url {broker.url}"
            hint = f"{SHIFT_MIN}-minute shifts; in another terminal: {report}"
            print(f"demo: {hint}")
            view.hints.append(hint)
        if panel:
            line = start_panel(Path(tmp), broker.url, cfg.mqtt.prefix, stack, plant_zone(data))
            print(f"demo: {line}", flush=True)
            view.hints.append(line)
        make = partial(build_runtime, cfg, reg, url_override=broker.url)
        rc = asyncio.run(_run(make, view, seconds, lambda: _feed_view(client, early, view)))
        print(f"demo: stopped; {view.total} messages, {view.bytes} bytes reached the broker", flush=True)
        return rc
