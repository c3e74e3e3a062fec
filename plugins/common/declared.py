"""Declared values of plugins that publish their driver's values as they come (``values``, ``plc``)."""

from __future__ import annotations

from collections.abc import Sequence

from edge_agent.drivers.contract import ValueSpec


def driver_values(options: object, driver: Sequence[ValueSpec]) -> Sequence[ValueSpec]:
    """The driver's values, unchanged (a bad value is published as null with its quality)."""
    return driver
