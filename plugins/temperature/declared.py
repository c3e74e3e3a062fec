"""What the ``temperature`` plugin emits (declared values) and which options name a value."""

from __future__ import annotations

from collections.abc import Sequence

from edge_agent.drivers.contract import DType, ValueRef, ValueSpec
from edge_agent.plugins.common.alarms import Direction
from edge_agent.plugins.temperature.options import TemperatureOptions

UNIT_NAMES = {"C": "degC", "F": "degF", "K": "K"}


def channels(driver: Sequence[ValueSpec]) -> list[str]:
    """Channel names from the driver's values: a temperature per channel, or ``name_ohm`` (RTD)."""
    return [v.key.removesuffix("_ohm") if v.unit == "ohm" else v.key for v in driver]


def keys(o: TemperatureOptions) -> tuple[str, str]:
    """The temperature and rate keys in the published unit (``temp_c``, ``rate_c_per_min``)."""
    u = str(o.unit).lower()
    return f"temp_{u}", f"rate_{u}_per_min"


def feature_key(o: TemperatureOptions, feature: str) -> str:
    """An alarm's feature as a dotted key: ``bearing_de`` means ``bearing_de.temp_c``."""
    return feature if "." in feature else f"{feature}.{keys(o)[0]}"


def declared(o: TemperatureOptions, driver: Sequence[ValueSpec]) -> list[ValueSpec]:
    """Per channel: temperature and rate; time to alarm with a high limit; cold junction on request."""
    temp, rate = keys(o)
    unit = UNIT_NAMES[str(o.unit)]
    high = {feature_key(o, a.feature) for a in o.alarms if a.direction is Direction.HIGH}
    out: list[ValueSpec] = []
    for ch in channels(driver):
        out.append(ValueSpec(f"{ch}.{temp}", DType.FLOAT32, unit, "filtered temperature; null when not good"))
        out.append(ValueSpec(f"{ch}.{rate}", DType.FLOAT32, f"{unit}/min", "least-squares slope over rate_window_s"))
        if f"{ch}.{temp}" in high:
            out.append(ValueSpec(f"{ch}.time_to_alarm_s", DType.INT, "s", "to the lowest inactive high limit"))
        if o.publish_cold_junction:
            out.append(ValueSpec(f"{ch}.cj_c", DType.FLOAT32, "degC", "cold junction"))
    return out


def references(o: TemperatureOptions) -> list[ValueRef]:
    """Alarm features: a channel (its temperature) or ``channel.key``."""
    return [ValueRef(f"alarms[{i}].feature", feature_key(o, a.feature), numeric=True) for i, a in enumerate(o.alarms)]
