"""The thermal simulator of the temperature drivers' ``backend = "sim"``: the process a
simulated sensor measures (a drifting ambient or a bearing that warms up), with noise and
injected sensor faults. Shared by the MAX318xx chips and the simulated serial instruments."""

from __future__ import annotations

import enum
import math
import random
from typing import Annotated

import msgspec


class Backend(enum.StrEnum):
    HW = "hw"
    SIM = "sim"


class ThermalProfile(enum.StrEnum):
    AMBIENT = "ambient"  # flat at start_c, slow +-amplitude_c drift over period_s
    BEARING = "bearing"  # starts at start_c, ramps at ramp_c_per_min up to max_c, then holds


class SimFault(enum.StrEnum):
    NONE = "none"
    OPEN_CIRCUIT = "open_circuit"
    SHORT_GND = "short_gnd"
    SHORT_VCC = "short_vcc"


class ThermalSim(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The simulated process a sim chip measures (``sim = { profile = "bearing", ... }``)."""

    profile: ThermalProfile = ThermalProfile.AMBIENT
    start_c: float = 25.0
    ramp_c_per_min: float = 0.0
    max_c: float = 120.0
    amplitude_c: Annotated[float, msgspec.Meta(ge=0)] = 0.5
    period_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    noise_c: Annotated[float, msgspec.Meta(ge=0)] = 0.05
    ambient_c: float = 25.0  # the cold junction / board temperature
    seed: int = 0
    fault: SimFault = SimFault.NONE
    fault_after_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    fault_for_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # 0 = the fault stays


class ThermalModel:
    """Hot-junction and board temperature of one simulated sensor as functions of time."""

    def __init__(self, cfg: ThermalSim) -> None:
        self.cfg = cfg
        self._rng = random.Random(cfg.seed)

    def process_c(self, t_s: float) -> float:
        """The measured process temperature at ``t_s`` seconds after start, with noise."""
        c = self.cfg
        if c.profile is ThermalProfile.BEARING:
            ramp = c.start_c + c.ramp_c_per_min * t_s / 60.0
            base = min(ramp, c.max_c) if c.ramp_c_per_min >= 0 else max(ramp, c.max_c)
        else:
            base = c.start_c + c.amplitude_c * math.sin(2.0 * math.pi * t_s / c.period_s)
        return base + (self._rng.gauss(0.0, c.noise_c) if c.noise_c else 0.0)

    def board_c(self, t_s: float) -> float:
        """The cold-junction (board) temperature: ambient with a slow, small drift."""
        return self.cfg.ambient_c + 0.2 * math.sin(2.0 * math.pi * t_s / 1800.0)

    def fault(self, t_s: float) -> SimFault:
        """The injected fault active at ``t_s``."""
        c = self.cfg
        if c.fault is SimFault.NONE or t_s < c.fault_after_s:
            return SimFault.NONE
        if c.fault_for_s and t_s >= c.fault_after_s + c.fault_for_s:
            return SimFault.NONE
        return c.fault
