"""The ``values`` plugin: publish the named values a driver returns, by exception."""

from edge_agent.plugins.values.plugin import SPEC

__all__ = ["SPEC"]
