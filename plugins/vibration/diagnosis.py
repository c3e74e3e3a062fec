"""Rule-based machine diagnosis from the window's spectrum: unbalance, misalignment, looseness.

Pure functions: the order symptoms of one window (:func:`symptoms`, vectorised over every order and
axis) and the symptom rules (:data:`RULES`, one table) turn into a confidence per fault with its
evidence (:func:`diagnose`). The rules are the textbook spectral patterns: ISO 13373-3 (condition
monitoring, vibration diagnostics: its annex tables of faults and their symptoms) and the common
vibration-analysis literature (the "illustrated vibration diagnostic charts" of Mitchell, Taylor,
Berry; Scheffer and Girdhar, *Practical Machinery Vibration Analysis*, ch. 6). The facts used:

- unbalance: 1x radial dominates the spectrum (most of the velocity), harmonics low, axial 1x low
  (below about half the radial) for a machine that is not overhung;
- misalignment, angular: high axial 1x (and 2x), at least about half of the radial;
- misalignment, parallel (offset): high radial 2x, from about half of 1x up to several times it;
- mechanical looseness: a long series of 1x harmonics (to 10x) well above the floor, and half
  orders (0.5x, 1.5x, 2.5x ...) from rubbing or a part rattling every other revolution.

A pattern only becomes a diagnosis when its own velocity reaches the gate (by default the zone B/C
boundary of ISO 20816-3 for the machine group and foundation): a machine in zone A or B with a
textbook-unbalanced spectrum is still a healthy machine, and healthy machines must stay quiet.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from edge_agent.plugins.vibration.features import G_MM_S2, Array, Spectrum


class Fault(enum.StrEnum):
    """Machine faults the rules name (bearing defects keep their own tones and indicators)."""

    UNBALANCE = "unbalance"
    MISALIGNMENT = "misalignment"
    LOOSENESS = "looseness"


HARMONICS = tuple(range(1, 11))  # 1x .. 10x
HALF_ORDERS = (0.5, 1.5, 2.5, 3.5)
ORDERS = tuple(sorted((*map(float, HARMONICS), *HALF_ORDERS)))
_ORDERS_ARRAY = np.asarray(ORDERS)
_PER_ORDER_MM_S = 1.0 / _ORDERS_ARRAY * (G_MM_S2 / (2 * np.pi) / math.sqrt(2))  # peak g -> mm/s RMS at 1 Hz, per order
PRESENT_DB = 12.0  # an order is "present" this far above the local floor ...
PRESENT_SHARE = 0.05  # ... and with at least this share of the radial 1x velocity


@dataclass(frozen=True, slots=True)
class Symptoms:
    """The order picture of one window: velocities (mm/s RMS) per order, radial and axial."""

    shaft_hz: float
    radial_axes: tuple[str, ...]
    axial_axis: str | None
    radial_mm_s: dict[float, float]  # order -> largest radial velocity
    radial_axis: dict[float, str]  # order -> the axis it came from
    axial_mm_s: dict[float, float]  # order -> axial velocity (empty without an axial axis)
    present: dict[float, bool]  # order -> above floor and relevant (radial or axial)
    overall_mm_s: float  # the radial axis of the 1x: its whole band velocity
    resolvable: bool = True  # 0.5x to 2x resolved in this window (speed high enough for its bin width)
    harmonic_mm_s: float = 0.0  # orders present beyond 1x (and half orders), on the radial axis with most

    def feature(self, name: str) -> float | None:
        """A named symptom for the rule table (None: not measurable on this installation)."""
        return _FEATURES[name](self)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 1e-12 else 0.0


def _axial(s: Symptoms, order: float) -> float | None:
    return s.axial_mm_s.get(order) if s.axial_axis else None


def _share_1x(s: Symptoms) -> float:
    return min(_ratio(s.radial_mm_s[1.0] ** 2, s.overall_mm_s**2), 1.0)


def _axial_ratio(s: Symptoms) -> float | None:
    if not s.axial_axis:
        return None
    return _ratio(max(s.axial_mm_s[1.0], s.axial_mm_s[2.0]), max(s.radial_mm_s[1.0], s.radial_mm_s[2.0]))


def _misalignment_mm_s(s: Symptoms) -> float:
    axial = [s.axial_mm_s[1.0], s.axial_mm_s[2.0]] if s.axial_axis else []
    return max([s.radial_mm_s[2.0], *axial])


_FEATURES = {
    "radial_1x_mm_s": lambda s: s.radial_mm_s[1.0],
    "radial_2x_mm_s": lambda s: s.radial_mm_s[2.0],
    "misalignment_mm_s": _misalignment_mm_s,
    "harmonic_mm_s": lambda s: s.harmonic_mm_s,
    "share_1x": _share_1x,
    "ratio_2x_1x": lambda s: _ratio(s.radial_mm_s[2.0], s.radial_mm_s[1.0]),
    "axial_1x_ratio": lambda s: None if _axial(s, 1.0) is None else _ratio(s.axial_mm_s[1.0], s.radial_mm_s[1.0]),
    "axial_ratio": _axial_ratio,
    "harmonics_3_10": lambda s: float(sum(s.present[float(h)] for h in HARMONICS if h >= 3)),
    "half_orders": lambda s: float(sum(s.present[o] for o in HALF_ORDERS)),
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One symptom scored 0..1 on a ramp from ``zero`` to ``full`` (either direction)."""

    feature: str
    zero: float
    full: float
    weight: float = 1.0
    required: bool = False  # not measurable here (no axial axis): the rule cannot fire

    def score(self, value: float) -> float:
        """0 at ``zero``, 1 at ``full``, linear between, clipped."""
        t = (value - self.zero) / (self.full - self.zero)
        return min(max(t, 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class Rule:
    """A fault's spectral pattern: the severity feature gated, and its weighted conditions."""

    fault: Fault
    kind: str  # the pattern's name in the evidence (e.g. "angular")
    severity: str  # the feature that must reach the gate (mm/s)
    conditions: tuple[Condition, ...]
    source: str


# The symptom table. Ramps: a condition scores 0 at the first number and 1 at the second.
RULES: tuple[Rule, ...] = (
    Rule(
        Fault.UNBALANCE,
        "1x radial",
        "radial_1x_mm_s",
        (
            Condition("share_1x", 0.5, 0.8, 2.0),  # 1x is most of the velocity
            Condition("ratio_2x_1x", 0.5, 0.25),  # 2x well below 1x
            Condition("axial_1x_ratio", 0.6, 0.35),  # axial low (skipped without an axial axis)
            Condition("harmonics_3_10", 4.0, 2.0),  # no long harmonic series
        ),
        "ISO 13373-3 annex (mass unbalance); Scheffer & Girdhar 6.2; Berry chart: 1x radial, axial < 50 % radial",
    ),
    Rule(
        Fault.MISALIGNMENT,
        "angular",
        "misalignment_mm_s",
        (
            Condition("axial_ratio", 0.35, 0.6, 2.0, required=True),  # axial 1x/2x at least half the radial
            Condition("harmonics_3_10", 5.0, 3.0),
        ),
        "ISO 13373-3 annex (misalignment); Scheffer & Girdhar 6.3; Berry chart: axial 1x >= 50 % radial",
    ),
    Rule(
        Fault.MISALIGNMENT,
        "parallel",
        "radial_2x_mm_s",
        (
            Condition("ratio_2x_1x", 0.5, 1.0, 2.0),  # 2x from half of 1x up to dominant
            Condition("harmonics_3_10", 5.0, 3.0),
        ),
        "ISO 13373-3 annex (misalignment); Scheffer & Girdhar 6.3; Berry chart: radial 2x > 50 % of 1x",
    ),
    Rule(
        Fault.LOOSENESS,
        "harmonics and half orders",
        "harmonic_mm_s",
        (
            Condition("harmonics_3_10", 2.0, 5.0, 1.5),  # a long 1x harmonic series
            Condition("half_orders", 0.0, 2.0),  # 0.5x multiples
        ),
        "ISO 13373-3 annex (looseness); Scheffer & Girdhar 6.5; Berry chart: harmonics to 10x, 0.5x orders",
    ),
)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One fault's opinion on one window."""

    fault: Fault
    confidence: float  # 0..1: pattern match x severity reached
    kind: str
    evidence: str  # for the technician: orders, velocities, axes
    scores: dict[str, float] = field(default_factory=dict)


@functools.lru_cache(maxsize=8)
def _block_offsets(half: int, floor_bins: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Bin offsets of the block gathered around an order (+-floor_bins), and the block's columns of
    the local floor: outside the search window and its +-2-bin lobe."""
    offs = np.arange(-floor_bins, floor_bins + 1)
    return offs, np.flatnonzero(np.abs(offs) > half + 2)


@functools.lru_cache(maxsize=8)
def _grid(axes: int, orders: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Broadcast row and column indices (axes x 1, 1 x orders) for picking one bin per order."""
    return np.arange(axes)[:, None], np.arange(orders)[None, :]


def order_amplitudes(
    power: Array, sp: Spectrum, shaft_hz: float, orders: Sequence[float] = ORDERS, floor_bins: int = 12
) -> tuple[Array, Array]:
    """(peak amplitude g, ratio over the local floor in dB), axes x orders, all orders at once;
    0 for an order too close to DC or to the spectrum's end to measure. One gather of +-floor_bins
    around every order serves the search, the peak's lobe energy and the floor's median."""
    ords = _ORDERS_ARRAY if orders is ORDERS else np.asarray(orders)
    kf = ords * (shaft_hz / sp.df_hz)
    last = power.shape[1] - floor_bins - 4
    half = max(1, min(2, round(0.01 * shaft_hz * max(orders) / sp.df_hz)))
    k = np.clip(np.rint(kf), half + 3, max(last, half + 3)).astype(np.int64)
    offs, cols = _block_offsets(half, floor_bins)
    idx = k[:, None] + offs
    if idx[0, 0] < 1:  # a low order: its floor is what lies above DC (the median ignores the repeats)
        idx = np.maximum(idx, 1)
    block = power[:, idx]  # axes x orders x (2 W + 1)
    am = block[:, :, floor_bins - half : floor_bins + half + 1].argmax(axis=2) + (floor_bins - half)
    a_i, o_i = _grid(block.shape[0], block.shape[1])
    cs = block.cumsum(axis=2)
    energy = cs[a_i, o_i, am + 2] - cs[a_i, o_i, am - 3]  # the max bin +-2 (Hann main lobe)
    floor = np.partition(block[:, :, cols], len(cols) // 2, axis=2)[:, :, len(cols) // 2]  # median (upper)
    db = 10 * np.log10(np.maximum(block[a_i, o_i, am], 1e-300) / np.maximum(floor, 1e-300))
    amp = np.sqrt(2.0 * energy)  # as features.tone_amplitude_g
    if kf[0] < half + 3 or kf[-1] >= last:  # an order too near DC or the end: not measured
        valid = (kf >= half + 3) & (kf < last)
        return amp * valid, db * valid
    return amp, db


def resolved(sp: Spectrum, shaft_hz: float, bins: int, floor_bins: int = 12) -> bool:
    """Whether 0.5x stands clear of DC and 2x of the spectrum's end in this window."""
    return 0.5 * shaft_hz / sp.df_hz >= 6 and 2 * shaft_hz / sp.df_hz < bins - floor_bins - 4


def symptoms(
    power: Array, sp: Spectrum, shaft_hz: float, axes: Sequence[str], axial_axis: str | None, vel_mm_s: Array
) -> Symptoms:
    """The order symptoms of one window from its power spectrum (axes x bins) and band velocities."""
    amp, db = order_amplitudes(power, sp, shaft_hz)
    v = amp * (_PER_ORDER_MM_S / shaft_hz)  # velocity RMS mm/s
    ax = axial_axis if axial_axis in axes else None
    radial = [i for i, a in enumerate(axes) if a != ax] or list(range(len(axes)))
    best = np.asarray(radial)[v[radial].argmax(axis=0)]  # per order: the radial axis with most
    cols = np.arange(len(ORDERS))
    rv = v[best, cols].tolist()
    i1 = ORDERS.index(1.0)
    share = PRESENT_SHARE * rv[i1]
    present = [d >= PRESENT_DB and x >= share for d, x in zip(db[best, cols].tolist(), rv, strict=True)]
    beyond = np.asarray([p and (o >= 2.0 or o in HALF_ORDERS) for o, p in zip(ORDERS, present, strict=True)])
    harmonic = float(np.sqrt((v[radial][:, beyond] ** 2).sum(axis=1).max())) if beyond.any() else 0.0
    axial: dict[float, float] = {}
    if ax is not None:
        axial = dict(zip(ORDERS, v[list(axes).index(ax)].tolist(), strict=True))
    best_l = best.tolist()
    return Symptoms(
        shaft_hz=shaft_hz,
        radial_axes=tuple(axes[i] for i in radial),
        axial_axis=ax,
        radial_mm_s=dict(zip(ORDERS, rv, strict=True)),
        radial_axis={o: axes[b] for o, b in zip(ORDERS, best_l, strict=True)},
        axial_mm_s=axial,
        present=dict(zip(ORDERS, present, strict=True)),
        overall_mm_s=float(vel_mm_s[best_l[i1]]),
        resolvable=resolved(sp, shaft_hz, power.shape[1]),
        harmonic_mm_s=harmonic,
    )


def _score(rule: Rule, features: Mapping[str, float | None]) -> tuple[float, dict[str, float]]:
    """Weighted mean of the measurable conditions, and the feature values that decided it."""
    total = weight = 0.0
    seen: dict[str, float] = {}
    for c in rule.conditions:
        value = features[c.feature]
        if value is None:
            if c.required:
                return 0.0, seen
            continue
        seen[c.feature] = value
        total += c.weight * c.score(value)
        weight += c.weight
    return (total / weight if weight else 0.0), seen


QUIET_BELOW = 0.7  # x the gate: a window whose largest axis velocity is below cannot show a fault
EVIDENCE_FROM = 0.1  # confidence from which a fault's evidence line is written
SEVERITY_RAMP = (0.75, 1.0)  # the severity factor rises from 0 to 1 over these multiples of the gate


def _severity_factor(v_mm_s: float, gate_mm_s: float) -> float:
    """0 below 3/4 of the gate, rising to 1 at the gate: a pattern is only a fault when it is strong
    (with the default 0.6 confidence a perfect pattern needs 0.9 x the gate: the top of zone B)."""
    lo, hi = SEVERITY_RAMP
    return min(max((v_mm_s / gate_mm_s - lo) / (hi - lo), 0.0), 1.0)


def quiet(
    velocity_rms_mm_s: float,
    shaft_hz: float,
    gate_mm_s: float,
    band_hz: tuple[float, float],
    rules: Sequence[Rule] = RULES,
) -> dict[Fault, Diagnosis] | None:
    """Every fault at confidence 0 without looking at the orders, when the window's whole band
    velocity (largest axis) is below where any pattern's severity could start: each pattern's
    velocity is measured on one axis and is a part of that axis' band velocity (Parseval) while
    0.5x .. 10x lie inside the band; 7 % margin for the estimates. None: look."""
    inside = HALF_ORDERS[0] * shaft_hz >= band_hz[0] and HARMONICS[-1] * shaft_hz <= band_hz[1]
    if not inside or velocity_rms_mm_s >= QUIET_BELOW * gate_mm_s:
        return None
    why = f"below the gate: {velocity_rms_mm_s:.2f} mm/s overall"
    return {r.fault: Diagnosis(r.fault, 0.0, r.kind, why) for r in rules}


def diagnose(s: Symptoms, gate_mm_s: float, rules: Sequence[Rule] = RULES) -> dict[Fault, Diagnosis]:
    """Per fault, the best-matching rule's confidence and evidence."""
    out: dict[Fault, Diagnosis] = {}
    if not s.resolvable:
        why = f"not resolved: shaft {s.shaft_hz:.3g} Hz too slow or too fast for this window"
        return {r.fault: Diagnosis(r.fault, 0.0, r.kind, why) for r in rules}
    features = {name: fn(s) for name, fn in _FEATURES.items()}
    for rule in rules:
        match, seen = _score(rule, features)
        severity = features[rule.severity] or 0.0
        conf = round(match * _severity_factor(severity, gate_mm_s), 3)
        if rule.fault not in out or conf > out[rule.fault].confidence:
            out[rule.fault] = Diagnosis(rule.fault, conf, rule.kind, "", seen)
    # the evidence line only where the fault shows (formatting is most of the cost): "" below
    for f, d in out.items():
        if d.confidence >= EVIDENCE_FROM:
            rule = next(r for r in rules if r.fault is f and r.kind == d.kind)
            out[f] = Diagnosis(f, d.confidence, d.kind, evidence(rule, s, features[rule.severity] or 0.0), d.scores)
    return out


def evidence(rule: Rule, s: Symptoms, severity_mm_s: float) -> str:
    """A technician's line: the pattern, the orders with velocities and axes, the axial picture."""
    r = s.radial_mm_s
    parts = [f"{rule.kind}: {severity_mm_s:.2f} mm/s"]
    parts.append(f"1x {r[1.0]:.2f} mm/s ({s.radial_axis[1.0]}), 2x {r[2.0]:.2f} mm/s ({s.radial_axis[2.0]})")
    if s.axial_axis:
        a = s.axial_mm_s
        parts.append(f"axial ({s.axial_axis}) 1x {a[1.0]:.2f}, 2x {a[2.0]:.2f} mm/s")
    if rule.fault is Fault.LOOSENESS or s.feature("harmonics_3_10"):
        hs = [f"{o:g}x" for o in ORDERS if s.present[o] and (o >= 3 or o in HALF_ORDERS)]
        parts.append("orders present: " + (" ".join(hs) if hs else "none beyond 2x"))
    return "; ".join(parts)


def summary(active: Mapping[str, float]) -> str:
    """The active faults, most confident first, comma-separated ("" when none)."""
    return ",".join(k for k, _ in sorted(active.items(), key=lambda kv: -kv[1]))
