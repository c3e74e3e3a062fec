"""The config the benchmarked agent runs: a copy pointed at the broker and at the plant simulator,
which it starts (and whose per-poll statistics it reads)."""

from __future__ import annotations

import json
import threading
import tomllib
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.agent.devtools.demo_plant import PlantProcess, localize, start_plantsim
from edge_agent.drivers.simulation.plantsim import send


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


SECTIONS = ("agent", "mqtt", "spool", "history", "sparkplug")  # --set history.enabled=false


def _assign(data: dict[str, Any], assignment: str) -> None:
    """``INSTANCE.path.to.key=TOML value`` (e.g. ``pump1-de.driver.drain_interval_s=0.006``), or a
    section's key (``history.enabled=false``)."""
    path, _, value = assignment.partition("=")
    name, *keys = path.split(".")
    inst = next((i for i in data["instances"] if i["name"] == name), None)
    if inst is None and name in SECTIONS and keys:
        inst = data.setdefault(name, {})
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
