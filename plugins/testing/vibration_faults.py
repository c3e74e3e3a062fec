"""Synthetic machine-fault signals with known answers, for the diagnosis tests and bench.

Each case is a 3-axis window (x, y radial 90 degrees apart, z axial) of a machine at a speed:
the healthy baseline (1x and 2x at zone A/B velocities, the plant's Gaussian noise), plus one
fault's pattern at a severity given as the pattern's velocity (mm/s RMS), plus optionally a
bearing defect from the simulated machine's impact model. Patterns follow the textbook pictures
the rules encode (plugins/vibration/diagnosis.py), with random phases and a spread of shapes per
seed so a case is not the rule's own mirror image.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from edge_agent.drivers.simulation.vibration_model import FaultKind, ModelOptions, VibrationModel
from edge_agent.plugins.vibration.analysis import FeatureConfig, analyse
from edge_agent.plugins.vibration.bearing import orders_from_geometry
from edge_agent.plugins.vibration.features import G_MM_S2, Array


class TrueFault(enum.StrEnum):
    HEALTHY = "healthy"
    UNBALANCE = "unbalance"
    MISALIGNMENT_ANGULAR = "misalignment (angular)"
    MISALIGNMENT_PARALLEL = "misalignment (parallel)"
    LOOSENESS = "looseness"
    BEARING_OUTER = "bearing outer race"
    BEARING_INNER = "bearing inner race"
    BEARING_BALL = "bearing ball"
    UNBALANCE_BEARING = "unbalance + bearing outer"


# What the diagnosis should say for each true fault (the names of diagnosis.faults).
EXPECTED: dict[TrueFault, frozenset[str]] = {
    TrueFault.HEALTHY: frozenset(),
    TrueFault.UNBALANCE: frozenset({"unbalance"}),
    TrueFault.MISALIGNMENT_ANGULAR: frozenset({"misalignment"}),
    TrueFault.MISALIGNMENT_PARALLEL: frozenset({"misalignment"}),
    TrueFault.LOOSENESS: frozenset({"looseness"}),
    TrueFault.BEARING_OUTER: frozenset({"bearing_outer"}),
    TrueFault.BEARING_INNER: frozenset({"bearing_inner"}),
    TrueFault.BEARING_BALL: frozenset({"bearing_ball"}),
    TrueFault.UNBALANCE_BEARING: frozenset({"unbalance", "bearing_outer"}),
}

# Severity as a multiple of the diagnosis gate (the zone B/C boundary): light stays in zone B.
SEVERITY_X_GATE = {"light": 0.6, "moderate": 1.4, "severe": 3.0}
BEARING_G = {"light": 0.03, "moderate": 0.15, "severe": 0.5}  # impact peak at the resonance
NOISE_G = 0.02  # the reference plant's sensor noise (std)


@dataclass(frozen=True)
class Case:
    fault: TrueFault
    rpm: float
    severity: str
    seed: int


def g_peak(v_mm_s: float, f_hz: float) -> float:
    """Velocity RMS (mm/s) of a sine at f -> its peak acceleration in g."""
    return v_mm_s * math.sqrt(2) * 2 * math.pi * f_hz / G_MM_S2


class _Builder:
    """Adds sines given in velocity per axis to a window."""

    def __init__(self, rate_hz: float, n: int, shaft_hz: float, rng: np.random.Generator) -> None:
        self.t = np.arange(n) / rate_hz
        self.x = np.zeros((n, 3))
        self.shaft_hz = shaft_hz
        self.rng = rng

    def order(self, order: float, v_mm_s: tuple[float, float, float], phase: float | None = None) -> None:
        f = order * self.shaft_hz
        ph = self.rng.uniform(0, 2 * math.pi) if phase is None else phase
        for axis, v in enumerate(v_mm_s):
            shift = (math.pi / 2 if axis == 1 else 0.0) + (0.4 * axis if axis == 2 else 0.0)
            self.x[:, axis] += g_peak(v, f) * np.sin(2 * math.pi * f * self.t + ph + shift)


def _healthy(b: _Builder) -> None:
    r = b.rng
    b.order(1.0, (r.uniform(0.6, 2.0), r.uniform(0.5, 1.6), r.uniform(0.15, 0.6)))
    b.order(2.0, (r.uniform(0.1, 0.5), r.uniform(0.1, 0.4), r.uniform(0.1, 0.5)))
    b.order(3.0, (r.uniform(0.02, 0.15), r.uniform(0.02, 0.1), 0.05))


def _unbalance(b: _Builder, v: float) -> None:
    b.order(1.0, (v, v * b.rng.uniform(0.7, 1.0), v * b.rng.uniform(0.1, 0.3)), phase=0.0)


def _angular(b: _Builder, v: float) -> None:
    b.order(1.0, (0.5 * v, 0.4 * v, v * b.rng.uniform(0.9, 1.1)))
    b.order(2.0, (0.3 * v, 0.25 * v, v * b.rng.uniform(0.4, 0.7)))


def _parallel(b: _Builder, v: float) -> None:
    b.order(1.0, (0.5 * v, 0.4 * v, 0.2 * v))
    b.order(2.0, (v, v * b.rng.uniform(0.6, 0.9), v * b.rng.uniform(0.3, 0.5)))
    b.order(3.0, (0.3 * v, 0.2 * v, 0.1 * v))


def _looseness(b: _Builder, v: float) -> None:
    """1x harmonics to 10x (slowly falling) and half orders; the non-1x part has velocity v."""
    ks = [float(k) for k in range(2, 11)] + [0.5, 1.5, 2.5, 3.5]
    raw = np.array([k**-0.5 if k == int(k) else 0.5 * k**-0.5 for k in ks]) * b.rng.uniform(0.7, 1.3, len(ks))
    raw *= v / math.sqrt(float(np.sum(raw**2)))
    b.order(1.0, (0.8 * v, 0.6 * v, 0.2 * v))
    for k, vk in zip(ks, raw, strict=True):
        b.order(k, (float(vk), 0.7 * float(vk), 0.2 * float(vk)))


def _impacts(kind: FaultKind, fault_g: float, rpm: float, rate_hz: float, n: int, seed: int) -> Array:
    """The simulated machine's bearing impacts alone (no shaft, no noise)."""
    opts = ModelOptions(
        rpm=rpm, unbalance_g=0.0, misalignment_g=0.0, noise_g=0.0, fault=kind, fault_g=fault_g, seed=seed
    )
    return VibrationModel(opts, rate_hz, 3).generate(n)


def window(case: Case, gate_mm_s: float, rate_hz: float = 3200.0, seconds: float = 1.0) -> Array:
    """One (n, 3) window in g of ``case``."""
    n = round(rate_hz * seconds)
    rng = np.random.default_rng(case.seed)
    b = _Builder(rate_hz, n, case.rpm / 60.0, rng)
    _healthy(b)
    v = SEVERITY_X_GATE[case.severity] * gate_mm_s
    pattern = {
        TrueFault.UNBALANCE: _unbalance,
        TrueFault.UNBALANCE_BEARING: _unbalance,
        TrueFault.MISALIGNMENT_ANGULAR: _angular,
        TrueFault.MISALIGNMENT_PARALLEL: _parallel,
        TrueFault.LOOSENESS: _looseness,
    }.get(case.fault)
    if pattern is not None:
        pattern(b, v)
    kind = {
        TrueFault.BEARING_OUTER: FaultKind.OUTER,
        TrueFault.BEARING_INNER: FaultKind.INNER,
        TrueFault.BEARING_BALL: FaultKind.BALL,
        TrueFault.UNBALANCE_BEARING: FaultKind.OUTER,
    }.get(case.fault)
    out = b.x + rng.normal(0.0, NOISE_G * rng.uniform(0.5, 2.5), (n, 3))
    if kind is not None:
        out += _impacts(kind, BEARING_G[case.severity], case.rpm, rate_hz, n, case.seed)
    return out


def cases(
    speeds_rpm: tuple[float, ...] = (900.0, 1485.0, 1800.0, 2970.0),
    severities: tuple[str, ...] = ("light", "moderate", "severe"),
    seeds: int = 3,
) -> Iterator[Case]:
    """Every fault at every speed and severity, ``seeds`` random shapes each (healthy: 3 x as many)."""
    for fault in TrueFault:
        for rpm in speeds_rpm:
            sevs = ("moderate",) if fault is TrueFault.HEALTHY else severities
            n = seeds * 3 if fault is TrueFault.HEALTHY else seeds
            for sev in sevs:
                for seed in range(n):
                    yield Case(fault, rpm, sev, seed)


GATE_MM_S = 2.8  # group 2, rigid: the zone B/C boundary
LABELS = ("unbalance", "misalignment", "looseness", "bearing_outer", "bearing_inner", "bearing_ball")
_BEARING_LABELS = {"bpfo": "bearing_outer", "bpfi": "bearing_inner", "bsf": "bearing_ball"}


def feature_config(rate_hz: float = 3200.0) -> FeatureConfig:
    """The plugin's defaults for a 6205 bearing, group 2 rigid, z axial."""
    return FeatureConfig(
        axes=("x", "y", "z"),
        iso_limits_mm_s=(1.4, 2.8, 4.5),
        orders=orders_from_geometry(9, 0.3126, 1.537),
        envelope_band_hz=(rate_hz / 12.8, rate_hz / 3.2),
        diagnosis_gate_mm_s=GATE_MM_S,
        axial_axis="z",
    )


def diagnosed(case: Case, cfg: FeatureConfig, confidence: float = 0.6, ratio_db: float = 14.0) -> frozenset[str]:
    """What one window of ``case`` is diagnosed as (the plugin's rules; bearing tones by ratio)."""
    a = analyse(window(case, GATE_MM_S), 3200.0, cfg, case.rpm / 60.0)
    out = {f.value for f, d in a.diagnoses.items() if d.confidence >= confidence}
    out |= {
        _BEARING_LABELS[t.value] for t, db in a.tone_ratio_db.items() if t.value in _BEARING_LABELS and db >= ratio_db
    }
    return frozenset(out)


Confusion = dict[tuple[TrueFault, str], dict[str, int]]


def confusion(all_cases: Iterator[Case] | list[Case]) -> tuple[Confusion, dict[tuple[TrueFault, str], int]]:
    """Per (true fault, severity): how many windows got each diagnosis ("none": nothing), and totals."""
    cfg = feature_config()
    table: Confusion = {}
    totals: dict[tuple[TrueFault, str], int] = {}
    for case in all_cases:
        key = (case.fault, case.severity)
        got = diagnosed(case, cfg)
        row = table.setdefault(key, dict.fromkeys((*LABELS, "none"), 0))
        for label in got or {"none"}:
            row[label] += 1
        totals[key] = totals.get(key, 0) + 1
    return table, totals


def markdown(table: Confusion, totals: dict[tuple[TrueFault, str], int]) -> str:
    """The confusion table as markdown: rows true fault and severity, columns diagnosis (count/total)."""
    head = "| true fault | severity | " + " | ".join(LABELS) + " | none |"
    lines = [head, "|" + "---|" * (len(LABELS) + 3)]
    for (fault, sev), row in table.items():
        n = totals[(fault, sev)]
        expected = EXPECTED[fault] or {"none"}
        cells = [
            f"**{row[c]}/{n}**" if c in expected else (f"{row[c]}/{n}" if row[c] else "") for c in (*LABELS, "none")
        ]
        lines.append(f"| {fault.value} | {sev} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
