"""The ``recorder`` plugin: alarm-triggered captures for root cause analysis."""

from edge_agent.plugins.recorder.plugin import SPEC

__all__ = ["SPEC"]
