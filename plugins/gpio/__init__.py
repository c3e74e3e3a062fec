"""The ``gpio`` plugin: publish inputs, counters and tachometer rpm by exception; drive outputs."""

from edge_agent.plugins.gpio.plugin import SPEC

__all__ = ["SPEC"]
