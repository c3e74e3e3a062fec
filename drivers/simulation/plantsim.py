"""``edge-agent plantsim``: the simulated hardware of a config, served from outside the agent.

Reads the same config file the agent runs and serves every device it can reach from outside:
each Modbus TCP instance on 127.0.0.1 with a ``layout`` (or ``tags_csv``) as a simulated PLC on
its port; each ``iio`` instance whose ``sysfs_root``/``dev_dir`` are not the kernel's as a
simulated IIO device (a sysfs-like tree plus a FIFO as its character device, fed in real time
from the instance's ``sim`` table); each ``serial_line`` instance whose ``port`` is not under
/dev as an instrument behind a pty. Thermocouple chips (SPI ioctls) and GPIO pins (gpiochip
ioctls) cannot be reached from another process; they stay ``backend = "sim"`` in the agent.

Faults switch at run time through a Unix socket (``--control``), one JSON object per line:
``{"cmd": "fault", "instance": "pump1-de", "fault": "outer", "fault_g": 0.3}``,
``{"cmd": "plc", "instance": "plc1", "state": "busy" | "silent" | "ok"}``, ``{"cmd": "status"}``;
``edge-agent plantsim fault pump1-de outer --g 0.3`` sends them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.drivers.private_dirs import NotPrivate, check, claim, exposed_root

if TYPE_CHECKING:  # the simulators import numpy and pymodbus: only when serving, not for `--help`
    from edge_agent.drivers.iio.simulator import SimIioDevice
    from edge_agent.drivers.modbus.simulator import PlcImage

DEFAULT_CONTROL = "/tmp/edge-plantsim/control.sock"


def pointer_file() -> Path:
    """Where a running simulator notes its control socket (in the user's own runtime or cache
    directory, never /tmp), so ``plantsim status`` finds the one ``make demo`` started, flagless."""
    base = os.environ.get("XDG_RUNTIME_DIR") or str(Path.home() / ".cache")
    return Path(base) / "edge-agent" / "plantsim-control"


def find_control() -> str:
    """The control socket to ask: the running simulator's (its note), else the default path."""
    try:
        noted = pointer_file().read_text().strip()
    except OSError:
        return DEFAULT_CONTROL
    return noted if noted and os.path.exists(noted) else DEFAULT_CONTROL


KERNEL_PATHS = ("/sys", "/dev", "/proc")  # never written: the simulator only serves trees of its own
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class PlantSimError(Exception):
    """The config asks for something the simulator cannot serve (message names the instance)."""


@dataclass
class Plc:
    name: str
    image: PlcImage
    port: int
    server: Any = None
    polls: int = 0


@dataclass
class Plant:
    """What one config asks the simulator to serve."""

    plcs: dict[str, Plc] = field(default_factory=dict)
    iio: dict[str, SimIioDevice] = field(default_factory=dict)
    serial: dict[str, Any] = field(default_factory=dict)  # instance -> SerialInstrument


def _is_kernel_path(path: str) -> bool:
    p = os.path.abspath(path)
    return any(p == k or p.startswith(k + "/") for k in KERNEL_PATHS)


def _iio_device(name: str, drv: dict[str, Any]) -> SimIioDevice | None:
    root, dev_dir = drv.get("sysfs_root", "/sys/bus/iio/devices"), drv.get("dev_dir", "/dev")
    if drv.get("backend", "hw") != "hw" or _is_kernel_path(root) or _is_kernel_path(dev_dir):
        return None
    import msgspec
    from edge_agent.drivers.iio.simulator import SimChip, SimIioDevice
    from edge_agent.drivers.simulation.vibration_model import ModelOptions

    device = str(drv.get("device", "iio:device0"))
    if not device.startswith("iio:device"):
        raise PlantSimError(f"{name}.driver.device: give the directory name (iio:deviceN) to simulate it")
    try:
        model = msgspec.convert(drv.get("sim", {}), ModelOptions)
        chip = SimChip(drv.get("sim_chip", "adxl345"))
    except (msgspec.ValidationError, ValueError) as exc:
        raise PlantSimError(f"{name}.driver.sim: {exc}") from exc
    return SimIioDevice(Path(root) / device, Path(dev_dir) / device, chip, model)


def _plc(name: str, drv: dict[str, Any], base: Path, seed: int) -> Plc | None:
    backend = drv.get("backend", "hw")  # "tcp": the deprecated spelling of hw + transport tcp
    transport = drv.get("transport", "tcp")
    if backend not in ("hw", "tcp") or transport != "tcp" or drv.get("host", "127.0.0.1") not in LOCAL_HOSTS:
        return None
    from edge_agent.drivers.modbus.simulator import LAYOUTS, PlcImage
    from edge_agent.drivers.modbus.tags import load_csv

    tags = []
    if "tags_csv" in drv:
        tags += load_csv(str(base / drv["tags_csv"]))
    if "layout" in drv:
        if drv["layout"] not in LAYOUTS:
            raise PlantSimError(f"{name}.driver.layout: unknown layout {drv['layout']!r}")
        tags += LAYOUTS[drv["layout"]]()
    if not tags:
        return None
    unit = int(drv.get("unit_id", 1))
    return Plc(name, PlcImage(tags, default_unit=unit, seed=int(drv.get("sim_seed", seed))), int(drv.get("port", 502)))


def plan(config: Path) -> Plant:
    """The devices of ``config`` (TOML, or JSON of the same shape) the simulator serves."""
    with open(config, "rb") as f:
        data = json.load(f) if config.suffix == ".json" else tomllib.load(f)
    return plan_data(data, config.absolute().parent)


def plan_data(data: dict[str, Any], base: Path) -> Plant:
    """The devices of a parsed config; relative file paths are taken from ``base``."""
    plant = Plant()
    for i, inst in enumerate(data.get("instances", [])):
        name, drv = str(inst.get("name", f"instances[{i}]")), inst.get("driver") or {}
        kind = drv.get("type")
        if kind == "iio" and (dev := _iio_device(name, drv)) is not None:
            plant.iio[name] = dev
        elif kind == "modbus" and (plc := _plc(name, drv, base, i + 1)) is not None:
            plant.plcs[name] = plc
        elif (
            kind == "serial_line" and drv.get("backend", "hw") == "hw" and not _is_kernel_path(drv.get("port", "/dev"))
        ):
            from edge_agent.drivers.serial_line.simulator import SerialInstrument

            plant.serial[name] = SerialInstrument.from_driver(drv)
    return plant


class PlantSim:
    """Serves a :class:`Plant` until stopped: PLC servers, IIO feeding, pty instruments, control."""

    def __init__(self, plant: Plant, *, control: str, tick_s: float = 0.05, stats_json: bool = False) -> None:
        self.plant, self.control, self.tick_s, self.stats_json = plant, control, tick_s, stats_json
        self.private: dict[str, str] = {}  # world-exposed directory -> created / kept / tightened
        self._existed: list[tuple[Path, Path]] = []  # (a place of ours, the directory above it that existed)
        self._stop = asyncio.Event()
        self._started = time.monotonic()

    def _emit(self, rec: dict[str, Any]) -> None:
        if self.stats_json:
            print(json.dumps(rec), flush=True)

    async def run(self) -> None:
        """Start everything, print the ready line, serve until SIGTERM/SIGINT, then clean up."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            await self._start()
            ready = {"plcs": {n: p.port for n, p in self.plant.plcs.items()}, "iio": sorted(self.plant.iio)}
            ready["serial"] = {n: s.path for n, s in self.plant.serial.items()}
            print(json.dumps({"ready": ready, "control": self.control, "private": self.private}), flush=True)
            await asyncio.gather(self._feed(), self._report(), self._stop.wait())
        finally:
            await self._cleanup()

    def _claim_private(self) -> None:
        """Every directory this run creates in a world-writable place (/tmp) is a fresh private one,
        or one of ours: another user's would let them feed the agent samples or answer its status."""
        places = [Path(self.control).parent]
        for dev in self.plant.iio.values():
            places += [dev.dir, dev.node.parent]
        for place in places:
            root = exposed_root(place)
            if root is not None and str(root) not in self.private:
                self.private[str(root)] = how = claim(root)
                what = {"created": "made a fresh private directory", "kept": "using our own private directory"}
                print(f"plantsim: {what.get(how, 'made our directory private (0700)')} {root}", file=sys.stderr)

    async def _start(self) -> None:
        from edge_agent.drivers.modbus.simulator import bound_port, serve_tcp

        self._note_existing()
        self._claim_private()
        for dev in self.plant.iio.values():
            dev.create()
        for plc in self.plant.plcs.values():
            plc.image.time_polls(functools.partial(self._on_poll, plc))
            plc.server = await serve_tcp(plc.image, "127.0.0.1", plc.port)
            plc.port = bound_port(plc.server)
        for inst in self.plant.serial.values():
            inst.open(asyncio.get_running_loop())
        Path(self.control).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.path.lexists(self.control):
            os.unlink(self.control)
        self._control = await asyncio.start_unix_server(self._serve_control, path=self.control)
        try:  # a note for `plantsim status` without --control; best effort (a read-only home still serves)
            pointer_file().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            pointer_file().write_text(self.control + "\n")
        except OSError:
            pass

    def _on_poll(self, plc: Plc, n: int, span_ms: float) -> None:
        plc.polls += 1
        self._emit({"poll": plc.name, "t": time.time(), "n": n, "span_ms": round(span_ms, 3)})

    async def _feed(self) -> None:
        """Tick every IIO device at a fixed period (no drift), until stopped."""
        next_t = time.monotonic()
        while not self._stop.is_set():
            for dev in self.plant.iio.values():
                dev.tick()
            next_t += self.tick_s
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))

    async def _report(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(5.0)
            self._emit({"iio": self.status()["iio"], "t": time.time()})

    def status(self) -> dict[str, Any]:
        """Counters of every device: IIO scans produced/lost, PLC polls and requests."""
        plcs = {
            n: {"port": p.port, "polls": p.polls, "requests": p.image.total_requests}
            for n, p in self.plant.plcs.items()
        }
        return {
            "uptime_s": round(time.monotonic() - self._started, 1),
            "iio": {n: d.stats() for n, d in self.plant.iio.items()},
            "plcs": plcs,
            "serial": {n: s.stats() for n, s in self.plant.serial.items()},
        }

    async def _serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    answer = self.command(json.loads(line))
                except (ValueError, KeyError, TypeError, PlantSimError) as exc:
                    answer = {"ok": False, "error": str(exc)}
                if "uptime_s" not in answer:  # changes are logged with their answer; status reads are not
                    text = line.decode(errors="replace").strip()
                    print(f"plantsim: {text} -> {answer}", file=sys.stderr, flush=True)
                writer.write((json.dumps(answer) + "\n").encode())
                await writer.drain()
        finally:
            writer.close()

    def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Apply one control command; the answer says what changed (or why not)."""
        what = cmd.get("cmd")
        if what == "status":
            return {"ok": True, **self.status()}
        name = str(cmd.get("instance", ""))
        if what == "fault":
            dev = self.plant.iio.get(name)
            if dev is None:
                raise PlantSimError(f"no simulated IIO device {name!r} (have: {', '.join(self.plant.iio) or 'none'})")
            dev.set_fault(
                str(cmd.get("fault", "none")), float(cmd.get("fault_g", 0.3)), float(cmd.get("growth_g_per_min", 0.0))
            )
            return {"ok": True, "instance": name, "fault": str(cmd.get("fault", "none"))}
        if what == "plc":
            plc = self.plant.plcs.get(name)
            if plc is None:
                raise PlantSimError(f"no simulated PLC {name!r} (have: {', '.join(self.plant.plcs) or 'none'})")
            state, units = str(cmd.get("state", "ok")), set(plc.image.units)
            if state not in ("ok", "busy", "silent"):
                raise PlantSimError(f"plc state {state!r}: ok, busy or silent")
            plc.image.busy_units = units if state == "busy" else set()
            plc.image.silent_units = units if state == "silent" else set()
            return {"ok": True, "instance": name, "state": state}
        raise PlantSimError(f"unknown command {what!r} (status, fault, plc)")

    async def _cleanup(self) -> None:
        self._emit({"final": self.status(), "t": time.time()})
        for dev in self.plant.iio.values():
            dev.remove()
        for inst in self.plant.serial.values():
            inst.close()
        for plc in self.plant.plcs.values():
            if plc.server is not None:
                await plc.server.shutdown()
        if getattr(self, "_control", None) is not None:
            self._control.close()
        if os.path.exists(self.control):
            os.unlink(self.control)
        with contextlib.suppress(OSError):
            if pointer_file().read_text().strip() == self.control:
                pointer_file().unlink()
        self._remove_empty_dirs()

    def _places(self) -> list[Path]:
        places = [Path(self.control).parent]
        for dev in self.plant.iio.values():
            places += [dev.dir, dev.node.parent]
        return places

    def _note_existing(self) -> None:
        """Before creating anything: the nearest existing directory above each place (kept at cleanup)."""
        for place in self._places():
            existing = next(d for d in (place, *place.parents) if d.exists())
            self._existed.append((place, existing))

    def _remove_empty_dirs(self) -> None:
        """The directories this run made and left empty (device trees, the socket's), up to the one
        that existed before: nothing of the run is left behind after SIGTERM."""
        for place, existed in self._existed:
            d = place
            while d != existed and existed in d.parents:
                try:
                    d.rmdir()  # only if empty: never anything else's files
                except FileNotFoundError:
                    pass  # removed with its device tree already: go on with its parent
                except OSError:
                    break
                d = d.parent


def send(control: str, cmd: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """Send one control command to a running simulator and return its answer."""
    import socket

    root = exposed_root(control)
    for place in ([root] if root is not None else []) + [Path(control)]:
        check(place)  # a socket another user put there would answer with forged data
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(control)
        s.sendall((json.dumps(cmd) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    answer: dict[str, Any] = json.loads(buf)
    return answer


def cmd_plantsim(args: argparse.Namespace) -> int:
    """The CLI: serve a config's plant, or send a control command to a running simulator."""
    if args.action != "serve":
        cmd: dict[str, Any] = {"cmd": args.action}
        if args.action in ("fault", "plc"):
            if not args.instance or not args.value:
                print(
                    f"plantsim {args.action}: give INSTANCE and {'FAULT' if args.action == 'fault' else 'STATE'}",
                    file=sys.stderr,
                )
                return 2
            key = "fault" if args.action == "fault" else "state"
            cmd.update(instance=args.instance, **{key: args.value}, fault_g=args.g, growth_g_per_min=args.growth)
        try:
            control = args.control or find_control()
            answer = send(control, cmd)
        except NotPrivate as exc:
            print(f"plantsim: not asking {control}: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(
                f"plantsim: no simulator at {control}: {exc} (is one running? `make demo` starts one)", file=sys.stderr
            )
            return 1
        print(json.dumps(answer, indent=1))
        return 0 if answer.get("ok") else 1
    if not args.config:
        print("plantsim: give -c CONFIG", file=sys.stderr)
        return 2
    try:
        plant = plan(Path(args.config))
    except (OSError, ValueError, PlantSimError) as exc:  # TOMLDecodeError and JSONDecodeError too
        print(f"plantsim: {args.config}: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(
            PlantSim(
                plant, control=args.control or DEFAULT_CONTROL, tick_s=args.tick_ms / 1000, stats_json=args.stats_json
            ).run()
        )
    except NotPrivate as exc:
        print(f"plantsim: {exc}", file=sys.stderr)
        return 1
    return 0


def add_arguments(s: argparse.ArgumentParser) -> None:
    """The options of ``edge-agent plantsim`` (also ``python -m edge_agent.drivers.simulation.plantsim``)."""
    s.add_argument("action", nargs="?", default="serve", choices=["serve", "status", "fault", "plc"])
    s.add_argument("instance", nargs="?", help="fault/plc: the instance name in the config")
    s.add_argument("value", nargs="?", help="fault: none, outer, inner, ball; plc: ok, busy, silent")
    s.add_argument("-c", "--config", help="serve: the config file the agent runs")
    s.add_argument(
        "--control",
        help=f"control socket (serve: default {DEFAULT_CONTROL}; commands: the running simulator's, e.g. the demo's)",
    )
    s.add_argument("--g", type=float, default=0.3, help="fault: impact peak in g (default 0.3)")
    s.add_argument("--growth", type=float, default=0.0, help="fault: growth in g per minute")
    s.add_argument("--tick-ms", type=float, default=50.0, help="serve: IIO feeding period (default 50 ms)")
    s.add_argument("--stats-json", action="store_true", help="serve: one JSON line per PLC poll and every 5 s")


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_agent.drivers.simulation.plantsim``: the same as ``edge-agent plantsim``."""
    p = argparse.ArgumentParser(
        prog="python -m edge_agent.drivers.simulation.plantsim", description=__doc__.split("\n")[0]
    )
    add_arguments(p)
    return cmd_plantsim(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
