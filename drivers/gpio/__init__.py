"""GPIO through gpiozero pin factories: debounced inputs, edge counters, tachometers, outputs."""

from edge_agent.drivers.gpio.driver import SPEC

__all__ = ["SPEC"]
