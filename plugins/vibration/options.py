"""Options of the ``vibration`` plugin (``[instances.options]``), with cross-field checks."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec
from edge_agent.plugins.common.alarms import AlarmConfig
from edge_agent.plugins.contract import Options
from edge_agent.plugins.vibration.bearing import Orders, orders_from_geometry
from edge_agent.plugins.vibration.iso import Foundation, zone_limits

Positive = Annotated[float, msgspec.Meta(gt=0)]


class SpeedSource(enum.StrEnum):
    NONE = "none"  # no running speed: no orders, no bearing tones
    FIXED = "fixed"  # ``rpm``
    LINK = "link"  # another instance's value: ``speed_instance`` / ``speed_key``
    SPECTRUM = "spectrum"  # strongest peak within ``speed_range_rpm``


class BearingOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Geometry (balls, diameters in one unit, contact angle) or catalogue orders per revolution."""

    balls: Annotated[int, msgspec.Meta(ge=3, le=100)] | None = None
    ball_diameter: Positive | None = None
    pitch_diameter: Positive | None = None
    contact_angle_deg: Annotated[float, msgspec.Meta(ge=0, lt=90)] = 0.0
    bpfo: Positive | None = None
    bpfi: Positive | None = None
    bsf: Positive | None = None
    ftf: Positive | None = None

    def orders(self) -> Orders:
        """Tone orders: the catalogue values when all four are given, else from geometry."""
        if None not in (self.bpfo, self.bpfi, self.bsf, self.ftf):
            return Orders(bpfo=self.bpfo, bpfi=self.bpfi, bsf=self.bsf, ftf=self.ftf)  # type: ignore[arg-type]
        assert self.balls and self.ball_diameter and self.pitch_diameter
        return orders_from_geometry(self.balls, self.ball_diameter, self.pitch_diameter, self.contact_angle_deg)

    def problems(self) -> list[str]:
        """Config errors as ``key: problem``."""
        catalogue = [self.bpfo, self.bpfi, self.bsf, self.ftf]
        if None not in catalogue:
            return []
        if any(v is not None for v in catalogue):
            return ["bearing: give all four of bpfo, bpfi, bsf, ftf, or none and the geometry"]
        if not (self.balls and self.ball_diameter and self.pitch_diameter):
            return ["bearing: needs balls, ball_diameter and pitch_diameter (or bpfo/bpfi/bsf/ftf)"]
        if self.ball_diameter >= self.pitch_diameter:
            return ["bearing.ball_diameter: must be smaller than pitch_diameter"]
        return []


class VibrationOptions(Options):
    window_s: Positive | None = None  # analysis window; default: the instance's interval_s
    axes: list[str] | None = None  # names of the driver's axes to analyse; default all
    machine_group: Annotated[int, msgspec.Meta(ge=1, le=2)] = 2
    foundation: Foundation = Foundation.RIGID
    iso_limits_mm_s: tuple[float, float, float] | None = None  # custom A/B, B/C, C/D boundaries
    velocity_band_hz: tuple[float, float] = (10.0, 1000.0)
    peaks: Annotated[int, msgspec.Meta(ge=0, le=20)] = 3
    bands_hz: list[tuple[float, float]] = []  # [[lo, hi], ...] -> bands_g (RMS g per band)
    speed_source: SpeedSource = SpeedSource.NONE
    rpm: Positive | None = None
    speed_instance: str | None = None
    speed_key: str = "rpm"
    speed_max_age_s: Positive = 5.0
    speed_fallback_spectrum: bool = True  # link value missing or stale: estimate from the spectrum
    speed_range_rpm: tuple[float, float] = (300.0, 3600.0)
    bearing: BearingOptions | None = None
    envelope_band_hz: tuple[float, float] | None = None  # default: [rate/12.8, rate/3.2]
    tone_harmonics: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    tone_tolerance_pct: Annotated[float, msgspec.Meta(gt=0, le=10)] = 1.0
    fault_ratio_db: Positive = 14.0
    fault_n: Annotated[int, msgspec.Meta(ge=1)] = 3
    fault_m: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    alarms: list[AlarmConfig] = []
    diagnosis: bool = True  # unbalance / misalignment / looseness rules (needs a running speed)
    axial_axis: str | None = "z"  # the axis along the shaft; absent from the axes: no axial symptoms
    diagnosis_gate_mm_s: Positive | None = None  # a pattern's velocity that makes it a fault; default: zone B/C
    diagnosis_confidence: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.6  # a window "passes" at this
    overrun_quiet_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0  # clean time that ends an overrun episode
    capture_max_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0  # 10 s x 3 axes at 25.6 kHz: 3 MB

    def iso_limits(self) -> tuple[float, float, float]:
        """The zone boundaries in use (custom, else from machine group and foundation)."""
        if self.iso_limits_mm_s is not None:
            return self.iso_limits_mm_s
        return zone_limits(self.machine_group, self.foundation)

    def diagnosis_gate(self) -> float:
        """The velocity (mm/s) a fault pattern must reach: configured, else the zone B/C boundary."""
        return self.diagnosis_gate_mm_s or self.iso_limits()[1]


def _pair_problem(key: str, pair: tuple[float, float]) -> list[str]:
    if not 0 <= pair[0] < pair[1]:
        return [f"{key}: expected [low_hz, high_hz] with 0 <= low < high, got {pair}"]
    return []


def check_options(o: VibrationOptions, driver_type: str | None) -> list[str]:
    """Cross-field checks beyond the schema."""
    errs = _pair_problem("velocity_band_hz", o.velocity_band_hz)
    errs += _pair_problem("speed_range_rpm", o.speed_range_rpm)
    for i, band in enumerate(o.bands_hz):
        errs += _pair_problem(f"bands_hz[{i}]", band)
    if o.envelope_band_hz is not None:
        errs += _pair_problem("envelope_band_hz", o.envelope_band_hz)
    lim = o.iso_limits_mm_s
    if lim is not None and not 0 < lim[0] < lim[1] < lim[2]:
        errs.append(f"iso_limits_mm_s: expected three increasing positive values, got {lim}")
    if o.speed_source is SpeedSource.FIXED and o.rpm is None:
        errs.append("rpm: required when speed_source = 'fixed'")
    if o.speed_source is SpeedSource.LINK and not o.speed_instance:
        errs.append("speed_instance: required when speed_source = 'link'")
    if o.fault_n > o.fault_m:
        errs.append(f"fault_n: must be <= fault_m ({o.fault_m})")
    if o.bearing is not None:
        errs += o.bearing.problems()
    return errs
