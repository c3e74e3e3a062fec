"""A small plant for the panel's tests and screenshots: an agent with a temperature instance whose
bearing heats up fast (high alarm within seconds), a maintenance plan soon due, a recorder that
saves a capture on the alarm, and a panel process with two users."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from edge_agent.agent.ops.panel.security import set_user
from support import ROOT, AgentProcess, Subscriber, scaled, write_config

INSTANCES = """
[[instances]]
name = "thermo-a"
plugin = "temperature"
interval_s = 1

[instances.driver]
type = "max31855"
backend = "sim"
variant = "K"

[[instances.driver.channels]]
name = "motor_de"
device = "/dev/spidev0.0"
sim = { profile = "ambient", start_c = 48.0, amplitude_c = 3.0, period_s = 60, noise_c = 0.2, seed = 1 }

[[instances.driver.channels]]
name = "bearing_nde"
device = "/dev/spidev0.1"
sim = { profile = "bearing", start_c = 70.0, ramp_c_per_min = 120.0, max_c = 110.0, noise_c = 0.05, seed = 4 }

[instances.options]
unit = "C"
deadband_deg = 0.1
heartbeat_s = 10

[[instances.options.alarms]]
feature = "bearing_nde"
level = "high"
limit = 80.0
hysteresis = 2.0
on_delay_s = 1

[[instances]]
name = "maintenance"
plugin = "maintenance"
interval_s = 1.0

[[instances.options.assets]]
name = "pump1"
equipment = "10004711"
functional_location = "PL01-L1-PUMP1"

[[instances.options.assets.plans]]
id = "regrease"
task = "Regrease pump bearings DE and NDE (6205, 4 g each)"
every_days = 0.00005
work_center = "MECH"

[[instances]]
name = "recorder"
plugin = "recorder"
interval_s = 10.0

[instances.options]
max_mb = 20

[[instances.options.rules]]
name = "overheat"
event = "alarm"
instance = "thermo-a"
match = { active = true }
record = ["thermo-a"]
pre_s = 5
post_s = 2
holdoff_s = 900
"""

PASSWORD = "gloves-on-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PanelPlant:
    """Agent ``line1`` + panel on a free port; ``close()`` stops both."""

    def __init__(self, tmp: Path, broker: Any, *, view_requires_login: bool = False) -> None:
        self.tmp = tmp
        cfg = write_config(
            tmp / "agent.toml",
            state_dir=tmp / "state",
            instances=INSTANCES,
            agent_id="line1",
            extra="[history]\ncommit_interval_s = 2\n",
        )
        self.sub = Subscriber(broker.url)
        self.agent = AgentProcess(cfg, broker.url)
        users = tmp / "users.txt"
        set_user(users, "tech", "technician", PASSWORD)
        set_user(users, "visitor", "viewer", PASSWORD)
        self.port = free_port()
        (tmp / "panel.toml").write_text(
            f'[panel]\nport = {self.port}\nusers_file = "users.txt"\ntimezone = "Europe/Berlin"\n'
            f"view_requires_login = {str(view_requires_login).lower()}\n"
            f'[mqtt]\nurl = "{broker.url}"\nusername = "panel"\n'
        )
        self.log = open(tmp / "panel.log", "wb")  # noqa: SIM115
        self.panel = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.agent", "panel", "-c", str(tmp / "panel.toml")],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        self.sub.wait_for(lambda: self.sub.on("edge/line1/data/thermo-a"), 30, "the agent running")
        self._wait_panel()

    def _wait_panel(self) -> None:
        deadline = time.monotonic() + scaled(30)
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/api/me", timeout=2).read()
                return
            except OSError:
                if self.panel.poll() is not None:
                    raise AssertionError((self.tmp / "panel.log").read_text()) from None
                time.sleep(0.2)
        raise AssertionError("panel did not answer within 30 s")

    def close(self) -> None:
        self.panel.terminate()
        try:
            self.panel.wait(10)
        except subprocess.TimeoutExpired:
            self.panel.kill()
            self.panel.wait()
        self.log.close()
        self.agent.kill()
        self.sub.close()
