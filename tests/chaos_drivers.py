"""Hostile drivers for the chaos suite and bench/chaos.py, installed as a third-party package would be.

``install(tmp)`` writes this module and a ``.dist-info`` with an ``edge_agent.drivers`` entry point
(``hostile``) into ``tmp/site``; an agent started with ``PYTHONPATH=tmp/site`` finds the driver
like any pip-installed one. ``mode`` picks the misbehaviour.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Literal

from edge_agent.drivers.contract import Capability, DriverSpec, DType, Options, Values, ValueSpec
from edge_agent.drivers.errors import DriverError

Mode = Literal[
    "good",
    "hang",
    "hang_then_return",
    "raise_open",
    "raise_read",
    "raise_close",
    "hang_close",
    "junk",
    "busy",
    "segfault",
]


class HostileOptions(Options):
    mode: Mode = "good"
    hang_s: float = 3.0  # hang_then_return: how long a slow read takes
    every: int = 4  # hang_then_return: every n-th read is slow


class Hostile:
    """Misbehaves as ``mode`` says; otherwise returns {"v": n}."""

    def __init__(self, o: HostileOptions) -> None:
        self.o = o
        self.n = 0
        self.opened = False

    def open(self) -> None:
        if self.o.mode == "raise_open":
            raise OSError(2, "No such device", "/dev/hostile0")
        self.opened = True

    def read(self) -> Values:
        if not self.opened:
            raise DriverError("not open")
        self.n += 1
        mode = self.o.mode
        if mode == "hang":
            threading.Event().wait()
        elif mode == "hang_then_return" and self.n % self.o.every == 0:
            time.sleep(self.o.hang_s)
        elif mode == "raise_read":
            raise RuntimeError("boom in read")
        elif mode == "junk":
            return "\x00junk"  # type: ignore[return-value]
        elif mode == "busy":
            x = 0
            while True:  # pure Python: holds the GIL between switch intervals
                x += 1
        elif mode == "segfault":
            import ctypes

            ctypes.string_at(0)
        return Values({"v": float(self.n)})

    def close(self) -> None:
        if self.o.mode == "raise_close":
            raise RuntimeError("boom in close")
        if self.o.mode == "hang_close":
            threading.Event().wait()
        self.opened = False


SPEC = DriverSpec(
    name="hostile",
    factory=Hostile,
    options=HostileOptions,
    provides=frozenset({Capability.VALUES}),
    description="misbehaves on purpose (chaos tests)",
    values=lambda o: [ValueSpec("v", DType.FLOAT64)],
)


def install(tmp: Path) -> dict[str, str]:
    """Install this module as the distribution ``edge-chaos``; returns the env for the agent."""
    site = tmp / "site"
    dist = site / "edge_chaos-0.1.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__), site / "chaos_drivers.py")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: edge-chaos\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[edge_agent.drivers]\nhostile = chaos_drivers:SPEC\n")
    return {"PYTHONPATH": str(site)}


HOSTILE = {  # instance name -> (mode, isolate)
    "hang": ("hang", "none"),
    "slow": ("hang_then_return", "none"),
    "noopen": ("raise_open", "none"),
    "badread": ("raise_read", "none"),
    "badclose": ("raise_close", "none"),
    "junk": ("junk", "none"),
    "busy": ("busy", "none"),
    "crash": ("segfault", "process"),
}


def instances_toml(hostile: dict[str, tuple[str, str]] | None = None, *, interval_s: float = 0.5) -> str:
    """The healthy 0.5 s instance plus the hostile ones, as ``[[instances]]`` tables."""
    out = [
        f'[[instances]]\nname = "healthy"\nplugin = "values"\ninterval_s = {interval_s}\n'
        'driver = { type = "sim", profile = "ramp", amplitude = 1000.0, period_s = 1000 }\n'
        "options = { heartbeat_s = 0 }\n"
    ]
    for name, (mode, isolate) in (HOSTILE if hostile is None else hostile).items():
        out.append(
            f'[[instances]]\nname = "{name}"\nplugin = "values"\ninterval_s = {interval_s}\nisolate = "{isolate}"\n'
            f'driver = {{ type = "hostile", mode = "{mode}", hang_s = 6.0, every = 3 }}\n'
            "options = { heartbeat_s = 0 }\n"
        )
    return "\n".join(out)
