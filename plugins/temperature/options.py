"""Options of the ``temperature`` plugin (the ``[instances.options]`` table)."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec
from edge_agent.plugins.common.alarms import AlarmConfig
from edge_agent.plugins.contract import Options


class Unit(enum.StrEnum):
    C = "C"
    F = "F"
    K = "K"


class TemperatureOptions(Options):
    unit: Unit = Unit.C  # published unit; alarm limits and deadband_deg are in it too
    nist_correction: bool = True  # straight-line chips (MAX31855): apply the NIST inverse
    exact_inverse: bool = False  # refine the NIST inverse on the reference function (< 1e-4 degC)
    median_window: Annotated[int, msgspec.Meta(ge=1, le=15)] = 1  # spike filter length, odd; 1 = off
    max_step_c: Annotated[float, msgspec.Meta(ge=0)] = 50.0  # larger change between reads = implausible
    jump_confirm_reads: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3  # reads at a new level to accept it
    valid_min_c: float = -270.0  # plausible range of the process, degC
    valid_max_c: float = 1820.0
    stuck_after_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # no change for this long = stuck; 0 = off
    stuck_tolerance_c: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # a change must exceed this
    rate_window_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 60.0  # least-squares window
    rate_min_points: Annotated[int, msgspec.Meta(ge=2)] = 5
    rate_warning_c_per_min: Annotated[float, msgspec.Meta(gt=0)] | None = None  # rising faster = warning
    rate_warning_on_delay_s: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    time_to_alarm_horizon_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0  # further away: None
    time_to_alarm_min_rate_c_per_min: Annotated[float, msgspec.Meta(ge=0)] = 0.5  # slower: None
    alarms: list[AlarmConfig] = []  # feature "bearing_de" means "bearing_de.temp_c" (unit key)
    report_by_exception: bool = True
    deadband_deg: Annotated[float, msgspec.Meta(ge=0)] = 0.2  # in the published unit
    rate_deadband_per_min: Annotated[float, msgspec.Meta(ge=0)] = 0.5
    heartbeat_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    publish_cold_junction: bool = False


def check_options(o: TemperatureOptions, driver_type: str | None) -> list[str]:
    """Cross-field checks beyond the schema."""
    errors: list[str] = []
    if o.median_window % 2 == 0:
        errors.append(f"median_window: must be odd (1 = off), got {o.median_window}")
    if o.valid_min_c >= o.valid_max_c:
        errors.append(f"valid_min_c: {o.valid_min_c:g} must be below valid_max_c {o.valid_max_c:g}")
    for i, a in enumerate(o.alarms):
        if a.feature.count(".") > 1:
            errors.append(f"alarms[{i}].feature: {a.feature!r} must be a channel or channel.key")
    return errors
