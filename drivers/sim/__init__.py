"""The generic simulated driver: a small signal generator returning named values."""

from edge_agent.drivers.sim.driver import SPEC

__all__ = ["SPEC"]
