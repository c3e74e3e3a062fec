"""A small physical model of a rotating machine's vibration, shared by the simulated backends.

Per axis: shaft 1x (unbalance), 2x (misalignment), a bearing defect as a jittered impulse train
exciting a damped structural resonance, and Gaussian noise, all in g. Inner-race impacts are
amplitude-modulated by the shaft (load zone); ball impacts alternate between the races (so both
BSF and 2xBSF appear) and are modulated by the cage (FTF). The fault, its amplitude and growth are
set from config and can be switched at run time (:meth:`VibrationModel.set_fault`) for demos.
"""

from __future__ import annotations

import enum
import math
from typing import Annotated

import msgspec
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


class FaultKind(enum.StrEnum):
    NONE = "none"
    OUTER = "outer"  # outer race: impacts at BPFO
    INNER = "inner"  # inner race: impacts at BPFI, modulated by 1x
    BALL = "ball"  # rolling element: impacts at 2xBSF, alternating strength, modulated by FTF


class SimBearing(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Bearing geometry of the simulated machine (default: a 6205 deep-groove ball bearing)."""

    balls: Annotated[int, msgspec.Meta(ge=3, le=100)] = 9
    ball_diameter: Annotated[float, msgspec.Meta(gt=0)] = 0.3126
    pitch_diameter: Annotated[float, msgspec.Meta(gt=0)] = 1.537
    contact_angle_deg: Annotated[float, msgspec.Meta(ge=0, lt=90)] = 0.0


class ModelOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Config of the simulated machine (``driver.sim = {...}``); amplitudes are peaks in g."""

    rpm: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 1797.0
    unbalance_g: Annotated[float, msgspec.Meta(ge=0)] = 0.05
    misalignment_g: Annotated[float, msgspec.Meta(ge=0)] = 0.02
    noise_g: Annotated[float, msgspec.Meta(ge=0)] = 0.02
    fault: FaultKind = FaultKind.NONE
    fault_g: Annotated[float, msgspec.Meta(ge=0)] = 0.5  # impact peak at the resonance, at onset
    fault_growth_g_per_min: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    fault_start_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # run time before the fault appears
    resonance_hz: Annotated[float, msgspec.Meta(gt=0)] | None = None  # None: 0.2 x sample rate
    damping_ratio: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.05
    jitter: Annotated[float, msgspec.Meta(ge=0, le=0.2)] = 0.01  # impact timing std / period
    seed: int = 0
    bearing: SimBearing = msgspec.field(default_factory=SimBearing)


def defect_orders(b: SimBearing) -> dict[str, float]:
    """Defect frequencies as multiples of shaft speed: ftf, bpfo, bpfi, bsf."""
    r = b.ball_diameter / b.pitch_diameter * math.cos(math.radians(b.contact_angle_deg))
    return {
        "ftf": 0.5 * (1 - r),
        "bpfo": 0.5 * b.balls * (1 - r),
        "bpfi": 0.5 * b.balls * (1 + r),
        "bsf": b.pitch_diameter / (2 * b.ball_diameter) * (1 - r * r),
    }


# Axis gains: x and y radial (90 degrees apart), z axial (smaller 1x, larger 2x for misalignment).
_GAIN_1X = (1.0, 0.8, 0.3)
_GAIN_2X = (0.6, 0.5, 1.0)
_GAIN_IMPACT = (1.0, 0.7, 0.4)
_PHASE = (0.0, math.pi / 2, 0.3)


class VibrationModel:
    """Generates contiguous blocks of (n, axes) samples in g; state carries across calls."""

    def __init__(self, options: ModelOptions, rate_hz: float, axes: int = 3) -> None:
        self.o = options
        self.rate_hz = rate_hz
        self.axes = axes
        self.n_done = 0  # samples generated so far
        self.rng = np.random.default_rng(options.seed)
        self.fault = options.fault
        self.fault_g = options.fault_g
        self.growth_g_per_min = options.fault_growth_g_per_min
        self.fault_since_s = options.fault_start_s
        self.orders = defect_orders(options.bearing)
        self._next_impact_k = 0
        self._tail = np.zeros((0, axes))
        self._h = self._impulse_response()
        self._gain_impact = np.asarray([_GAIN_IMPACT[a % 3] for a in range(axes)])
        self._shaft_mix = self._shaft_matrix()

    def _shaft_matrix(self) -> Array:
        """(3, axes): per axis, the weights of sin(wt), cos(wt), sin(2wt) in its shaft signal.

        ``u g1 sin(wt + ph) + m g2 sin(2wt)`` = ``u g1 cos(ph) sin(wt) + u g1 sin(ph) cos(wt) + m g2 sin(2wt)``:
        one sin and one cos per block whatever the number of axes, instead of two sines per axis."""
        u, m = self.o.unbalance_g, self.o.misalignment_g
        g1 = [_GAIN_1X[a % 3] for a in range(self.axes)]
        ph = [_PHASE[a % 3] for a in range(self.axes)]
        return np.array(
            [
                [u * g * math.cos(p) for g, p in zip(g1, ph, strict=True)],
                [u * g * math.sin(p) for g, p in zip(g1, ph, strict=True)],
                [m * _GAIN_2X[a % 3] for a in range(self.axes)],
            ]
        )

    def _impulse_response(self) -> Array:
        fn = self.o.resonance_hz or 0.2 * self.rate_hz
        fn = min(fn, 0.45 * self.rate_hz)
        zeta = self.o.damping_ratio
        decay = zeta * 2 * math.pi * fn
        t = np.arange(int(self.rate_hz * 7.0 / decay) + 1) / self.rate_hz  # ~ 7 time constants
        wd = 2 * math.pi * fn * math.sqrt(1 - zeta * zeta)
        return np.exp(-decay * t) * np.sin(wd * t)

    def set_fault(self, fault: FaultKind, fault_g: float, growth_g_per_min: float = 0.0) -> None:
        """Switch the bearing fault at run time; growth counts from now."""
        self.fault = FaultKind(fault)
        self.fault_g = fault_g
        self.growth_g_per_min = growth_g_per_min
        self.fault_since_s = self.n_done / self.rate_hz

    @property
    def shaft_hz(self) -> float:
        return self.o.rpm / 60.0

    def fault_hz(self) -> float:
        """Impact rate of the current fault (0 when healthy)."""
        order = {FaultKind.OUTER: "bpfo", FaultKind.INNER: "bpfi", FaultKind.BALL: "bsf"}.get(self.fault)
        if order is None:
            return 0.0
        scale = 2.0 if self.fault is FaultKind.BALL else 1.0
        return scale * self.orders[order] * self.shaft_hz

    def skip(self, n: int) -> None:
        """Advance the model's time by ``n`` samples without producing them (a simulated gap)."""
        if n > 0:
            self.n_done += n
            self._tail = np.zeros((0, self.axes))

    def generate(self, n: int) -> Array:
        """Return the next ``n`` samples, shape (n, axes), in g (an empty block when ``n`` is 0)."""
        if n <= 0:  # a read when no sample is due yet: nothing, and no impact bookkeeping
            return np.empty((0, self.axes))
        t = (self.n_done + np.arange(n)) / self.rate_hz
        out = self._shaft(t)
        noise = self.rng.standard_normal((n, self.axes))  # the draws of normal(0, noise_g): same stream
        noise *= self.o.noise_g
        out += noise
        impacts = self._impacts(t)
        if impacts is not None:
            out += impacts
        self.n_done += n
        return out

    def _shaft(self, t: Array) -> Array:
        wt = (2 * math.pi * self.shaft_hz) * t
        basis = np.empty((3, len(t)))
        np.sin(wt, out=basis[0])
        np.cos(wt, out=basis[1])
        np.multiply(basis[0], basis[1], out=basis[2])
        basis[2] *= 2.0  # sin(2wt) = 2 sin(wt) cos(wt)
        return basis.T @ self._shaft_mix

    def _amplitude_g(self, t_s: float) -> float:
        if self.fault is FaultKind.NONE or t_s < self.fault_since_s:
            return 0.0
        return self.fault_g + self.growth_g_per_min * (t_s - self.fault_since_s) / 60.0

    def _impacts(self, t: Array) -> Array | None:
        """The block's share of the resonance ringing (new impacts and the earlier tail); None if silent."""
        n = len(t)
        hits = self._impact_list(float(t[0]), n)
        carry = self._tail
        if not hits:  # the convolution would be all zeros (a healthy machine): only the old tail rings on
            if not len(carry):
                return None
            self._tail = carry[n:]
            out = np.zeros((n, self.axes))
            out[: len(carry)] = carry[:n]
            return out
        train = np.zeros(n)
        for k, idx, amp in hits:
            train[idx] += amp * self._modulation(k, idx + self.n_done)
        block = np.convolve(train, self._h)
        self._tail = block[n:, None] * self._gain_impact
        out = block[:n, None] * self._gain_impact
        m = min(len(carry), n)
        out[:m] += carry[:m]
        if len(carry) > n:  # very short blocks: keep the rest of the old tail too
            self._tail[: len(carry) - n] += carry[n:]
        return out

    def _impact_list(self, t0_s: float, n: int) -> list[tuple[int, int, float]]:
        f = self.fault_hz()
        amp = self._amplitude_g(t0_s)
        if f <= 0 or amp <= 0:
            self._next_impact_k = math.ceil(t0_s * f) if f > 0 else 0
            return []
        k = max(self._next_impact_k, math.ceil(t0_s * f))
        out = []
        while True:
            when = (k + self.rng.normal(0.0, self.o.jitter)) / f
            idx = round(when * self.rate_hz) - self.n_done
            if idx >= n:
                break
            if idx >= 0:
                out.append((k, idx, amp))
            k += 1
        self._next_impact_k = k
        return out

    def _modulation(self, k: int, sample: int) -> float:
        if self.fault is FaultKind.INNER:  # defect passes through the load zone once per turn
            return 0.5 * (1 + math.cos(2 * math.pi * self.shaft_hz * sample / self.rate_hz))
        if self.fault is FaultKind.BALL:  # alternate races; cage carries the ball through the load zone
            race = 1.0 if k % 2 == 0 else 0.6
            cage = 0.5 * (1 + math.cos(2 * math.pi * self.orders["ftf"] * self.shaft_hz * sample / self.rate_hz))
            return race * (0.3 + 0.7 * cage)
        return 1.0
