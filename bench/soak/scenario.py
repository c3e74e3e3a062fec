"""What happens to the plant during a soak, on a 1-hour time line, and which events each thing is
expected to raise. A shorter run scales every time by ``seconds / 3600`` (the clock steps keep
their size)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

HOUR_S = 3600.0


@dataclass(frozen=True)
class Action:
    """One thing done to the plant ``at_s`` after the agent's first start, undone ``for_s`` later."""

    at_s: float
    what: str  # fault | plc | outage | clock | cmd | ping | push | agent_restart
    target: str = ""  # instance, PLC or (clock) the new offset in s
    arg: Any = None  # fault name and its options, PLC state, command name
    for_s: float = 0.0

    def label(self) -> str:
        arg = f" {self.arg}" if self.arg not in (None, "") else ""
        dur = f" for {self.for_s:.0f} s" if self.for_s else ""
        return f"{self.what} {self.target}{arg}{dur}".replace("  ", " ").strip()


BEARING = {"fault": "outer", "fault_g": 0.3, "growth_g_per_min": 0.0}
# The first agent runs under libfaketime, which costs it ~17 % of a core by itself (bench.plant, 40 s,
# load 4-5: 20.3 % with the preload, 3.4 % without): the clock steps happen there, then a SIGTERM and
# a start without the preload, and the figures against the targets are those of the second agent.
SCENARIO: tuple[Action, ...] = (
    Action(120, "fault", "pump1-de", BEARING, 120),
    Action(300, "clock", "+10800"),  # +3 h: NTP's first sync after a boot with an old time
    Action(360, "plc", "plc1", "silent", 60),
    Action(480, "outage", for_s=60),
    Action(480, "ping"),  # 5 s after the agent is back online: its subscriptions must be back too
    Action(600, "clock", "+7200"),  # -1 h
    Action(660, "cmd", "plc1", "restart"),
    Action(780, "clock", "+0"),  # -2 h: back to the real time
    Action(900, "agent_restart", arg="without libfaketime"),
    Action(1300, "outage", for_s=600),  # the 10-minute outage, with faults inside it
    Action(1300, "ping"),
    Action(1400, "fault", "fan2", {"fault": "inner", "fault_g": 0.4, "growth_g_per_min": 0.0}, 200),
    Action(1500, "plc", "plc1", "busy", 60),
    Action(2000, "cmd", "pump1-nde", "restart"),
    Action(2100, "push", "meter1", {"options.heartbeat_s": 30}),
    Action(2200, "outage", for_s=30),
    Action(2200, "ping"),
    Action(2300, "fault", "pump1-nde", {"fault": "ball", "fault_g": 0.2, "growth_g_per_min": 0.05}, 500),
    Action(2500, "plc", "plc1", "silent", 120),
    Action(2700, "cmd", "thermo-a", "restart"),
    Action(2900, "outage", for_s=90),
    Action(2900, "ping"),
    Action(3100, "plc", "meter1", "busy", 60),
)

# Thermocouple faults come from the config (the chips are simulated inside the agent), timed from
# the start of their instance: (instance, channel, fault, after_s, for_s) on the 1-hour line.
TC_FAULTS = (
    ("thermo-a", "pump_de", "open_circuit", 300, 60),
    ("thermo-a", "motor_nde", "short_vcc", 1300, 60),
    ("thermo-b", "die", "short_gnd", 1500, 120),
)


def scaled(seconds: float) -> list[Action]:
    """The scenario for a run of ``seconds`` (times and durations scaled, clock offsets not)."""
    k = seconds / HOUR_S
    return [replace(a, at_s=a.at_s * k, for_s=a.for_s * k) for a in SCENARIO]


def with_tc_faults(data: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The config with the thermocouple faults of the scenario (scaled) set on their channels."""
    k = seconds / HOUR_S
    out = copy.deepcopy(data)
    for instance, channel, fault, after_s, for_s in TC_FAULTS:
        inst = next(i for i in out["instances"] if i["name"] == instance)
        ch = next(c for c in inst["driver"]["channels"] if c["name"] == channel)
        ch.setdefault("sim", {}).update(fault=fault, fault_after_s=after_s * k, fault_for_s=for_s * k)
    return out


# Events an action may raise, from when it is done until GRACE after it is undone:
# (instance, kind); "{target}" is the action's instance.
EXPECTED: dict[str, tuple[tuple[str, str], ...]] = {
    "fault": (
        ("{target}", "bearing_fault"),
        ("{target}", "alarm"),
        ("{target}", "iso_zone"),
        ("recorder", "capture_saved"),
    ),
    "plc": tuple(
        ("{target}", kind)
        for kind in ("device_fault", "device_ok", "sensor_fault", "sensor_ok", "tag_fault", "tag_ok", "instance_error")
    ),
    "outage": (),
    "clock": (("agent", "clock_step"), ("line1", "shift_report")),
    "cmd": (("agent", "audit"), ("{target}", "sensor_ok")),
    "ping": (),
    "push": (("agent", "audit"),),
    "agent_restart": (),
    # within the grace after every start of the agent: the line's state is new, and the simulated
    # part counter (GPIO, inside the agent) starts from 0 again
    "agent_start": (("line1", "state_change"), ("line1", "counter_reset")),
}
TC_EXPECTED = ("sensor_fault", "sensor_ok", "alarm")
# Events the reference plant raises by design at any time: (instance, kind, why).
BASELINE: tuple[tuple[str, str, str], ...] = (
    ("thermo-a", "rate_warning", "bearing_nde ramps at 6 C/min by design (examples/reference-plant.toml)"),
    ("thermo-a", "alarm", "bearing_nde ramps to 110 C by design: its high and high_high alarms"),
    ("pump1-thermal", "thermal_severity", "the simulated thermal image has a hot motor_de by design"),
    ("maintenance", "maintenance_due", "press1's die check every 100 parts: the simulated part counter gets there"),
    ("maintenance", "maintenance_overdue", "the same plan 10 % later"),
    (
        "pump1-de",
        "bearing_fault",
        "the config's own outer-race defect on pump1-de, growing from 60 s after plantsim starts",
    ),
    ("pump1-thermal", "alarm", "the simulated hot spot grows 3 C/min by design: motor_de.max_c passes 70 C"),
    ("recorder", "capture_saved", "the recorder's rules (bearing, overheat) fire on the designed faults above"),
)


def grace_s(seconds: float) -> float:
    """How long after an action its events still count as its own (90 s on the 1-hour line, 20 s at least)."""
    return max(20.0, 90.0 * seconds / HOUR_S)
