"""The demo's simulated hardware: ``edge-agent plantsim`` in a child process, on the demo's own
ports and paths, so the agent in the demo reads PLCs and accelerometers from outside as on a Pi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.agent.devtools.local_broker import free_port

KERNEL_PATHS = ("/sys", "/dev", "/proc")


@dataclass
class PlantProcess:
    """A running simulator: its control socket and what it serves."""

    control: str
    proc: subprocess.Popen[str]
    ready: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _simulated_path(path: str) -> bool:
    p = os.path.abspath(path)
    return not any(p == k or p.startswith(k + "/") for k in KERNEL_PATHS)


def localize(data: dict[str, Any], workdir: Path, base: Path) -> bool:
    """Point the config's simulated devices at ``workdir`` and free ports; True if any is left to serve.

    Local Modbus TCP PLCs get a free port, IIO devices on simulated paths a tree under ``workdir``,
    relative tag files an absolute path (the copy lives elsewhere)."""
    any_device = False
    for inst in data.get("instances", []):
        drv = inst.get("driver") or {}
        if (
            drv.get("type") == "modbus"
            and drv.get("backend", "hw") in ("hw", "tcp")  # "tcp": the deprecated spelling of hw + tcp
            and drv.get("transport", "tcp") == "tcp"
            and drv.get("host", "127.0.0.1") in ("127.0.0.1", "localhost")
        ):
            drv["port"] = free_port()
            if "tags_csv" in drv:
                drv["tags_csv"] = str((base / drv["tags_csv"]).absolute())
            any_device = True
        elif drv.get("type") == "iio" and drv.get("backend", "hw") == "hw":
            root, dev_dir = drv.get("sysfs_root", "/sys/bus/iio/devices"), drv.get("dev_dir", "/dev")
            if _simulated_path(root) and _simulated_path(dev_dir):
                drv["sysfs_root"], drv["dev_dir"] = str(workdir / "sys"), str(workdir / "dev")
                any_device = True
    return any_device


def start_plantsim(data: dict[str, Any], workdir: Path, stack: ExitStack, *, stats_json: bool = False) -> PlantProcess:
    """Write ``data`` (already localized) to ``workdir``, start the simulator on it, wait until it is ready."""
    cfg = workdir / "plant.json"
    cfg.write_text(json.dumps(data, default=str))
    control = str(workdir / "plantsim.sock")
    cmd = [sys.executable, "-m", "edge_agent.drivers.simulation.plantsim", "-c", str(cfg), "--control", control]
    proc = subprocess.Popen(cmd + (["--stats-json"] if stats_json else []), stdout=subprocess.PIPE, text=True)
    plant = PlantProcess(control, proc)
    stack.callback(plant.stop)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        plant.ready = json.loads(line)["ready"]
    except (ValueError, KeyError) as exc:
        raise RuntimeError(f"the plant simulator did not start (exit {proc.poll()}): {line.strip()!r}") from exc
    return plant
