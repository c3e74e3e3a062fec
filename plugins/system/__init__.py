"""The ``system`` plugin: health of the edge box and of the agent itself."""

from edge_agent.plugins.system.plugin import SPEC

__all__ = ["SPEC"]
