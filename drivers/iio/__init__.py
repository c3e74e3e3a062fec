"""Linux IIO buffered devices: the generic path for high-rate sensors with a kernel driver."""

from edge_agent.drivers.iio.driver import SPEC

__all__ = ["SPEC"]
