"""The ``thermal`` plugin: regions of interest on a thermal array (MLX90640), their temperatures,
rise over a reference or ambient, NETA MTS severity classes, alarms, trends and frames as PNG.
See docs/thermal.md."""

from __future__ import annotations

from edge_agent.plugins.contract import Capability, PluginSpec
from edge_agent.plugins.thermal.declared import declared, references
from edge_agent.plugins.thermal.options import ThermalOptions, check_options
from edge_agent.plugins.thermal.plugin import ThermalPlugin

SPEC = PluginSpec(
    name="thermal",
    factory=ThermalPlugin,
    options=ThermalOptions,
    requires=Capability.THERMAL_IMAGE,
    description="Thermal regions: max/mean/min, hot spot, delta-T, NETA severity classes, alarms, PNG frames",
    check=check_options,
    values=declared,
    references=references,
)

__all__ = ["SPEC", "ThermalOptions", "ThermalPlugin"]
