"""What the ``thermal`` plugin emits (declared values) and which options name a value."""

from __future__ import annotations

from collections.abc import Sequence

from edge_agent.plugins.contract import DType, ValueRef, ValueSpec
from edge_agent.plugins.thermal.options import ThermalOptions

F32 = DType.FLOAT32


def _region(name: str) -> list[ValueSpec]:
    return [
        ValueSpec(f"{name}.max_c", F32, "degC", "hottest pixel at the region's emissivity"),
        ValueSpec(f"{name}.mean_c", F32, "degC", "mean of the region's good pixels"),
        ValueSpec(f"{name}.min_c", F32, "degC", "coldest pixel"),
        ValueSpec(f"{name}.hot_row", DType.INT, "", "hot spot row (0 = top)"),
        ValueSpec(f"{name}.hot_col", DType.INT, "", "hot spot column (0 = left)"),
        ValueSpec(f"{name}.delta_t_c", F32, "K", "max over the reference region's max, or over ambient"),
        ValueSpec(f"{name}.rate_c_per_min", F32, "degC/min", "least-squares trend of max_c (null until enough frames)"),
        ValueSpec(f"{name}.severity", DType.STR, "", "temperature-rise class (NETA MTS 100.18), '' below the first"),
        ValueSpec(f"{name}.priority", DType.INT, "", "its priority, 1 most urgent; 0 none"),
    ]


def declared(o: ThermalOptions, driver: Sequence[ValueSpec]) -> list[ValueSpec]:
    """Per region its statistics and class, and the sensor's own temperature."""
    out = [
        ValueSpec("ta_c", F32, "degC", "the camera's own temperature"),
        ValueSpec("ambient_c", F32, "degC", "ambient used"),
    ]
    for r in o.all_regions():
        out += _region(r.name)
    return out


def references(o: ThermalOptions) -> list[ValueRef]:
    """Alarm features name this instance's values."""
    return [ValueRef(f"alarms[{i}].feature", a.feature, numeric=True) for i, a in enumerate(o.alarms)]
