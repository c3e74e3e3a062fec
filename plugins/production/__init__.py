"""The ``production`` plugin: counts, rate, run state, time per state and OEE per shift and rolling."""

from edge_agent.plugins.production.plugin import SPEC

__all__ = ["SPEC"]
