"""The ``vibration`` plugin: accelerometer waveforms in, machine-health features out.

Per window and axis: acceleration statistics, velocity RMS (ISO 20816-3 band), spectrum peaks and
bands, 1x/2x/3x; per instance: ISO 20816-3 (= 10816-3) zone, running speed, envelope-spectrum
bearing tones with an N-of-M fault indicator, and a rule-based diagnosis of unbalance,
misalignment and looseness. See docs/vibration.md.
"""

from __future__ import annotations

from edge_agent.drivers.contract import Capability
from edge_agent.plugins.contract import PluginSpec
from edge_agent.plugins.vibration.declared import declared, references
from edge_agent.plugins.vibration.options import VibrationOptions, check_options
from edge_agent.plugins.vibration.plugin import VibrationPlugin

SPEC = PluginSpec(
    name="vibration",
    factory=VibrationPlugin,
    options=VibrationOptions,
    requires=Capability.WAVEFORM,
    description="Vibration features: ISO 20816-3 severity, spectrum, orders, bearing tones, machine diagnosis",
    check=check_options,
    values=declared,
    references=references,
)

__all__ = ["SPEC", "VibrationOptions", "VibrationPlugin"]
