"""The ``maintenance`` plugin: preventive maintenance counters and plans per asset."""

from edge_agent.plugins.maintenance.plugin import SPEC

__all__ = ["SPEC"]
