"""pytest plugin of edge-agent (entry point ``pytest11``): fixtures for driver and plugin tests.

Loaded automatically wherever edge-agent is installed; it only adds fixtures, so it changes
nothing in a test run that does not use them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from edge_agent.drivers.buses.emulated import FakeI2CBus
from edge_agent.drivers.testing.clock import ManualClock
from edge_agent.drivers.testing.serial import LinkedPtys, PtyInstrument


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock at a fixed start that moves only with ``advance(s)``."""
    return ManualClock()


@pytest.fixture
def fake_i2c_bus() -> FakeI2CBus:
    """An empty fake I2C bus: ``fake_i2c_bus.devices[0x44] = MyChip()``."""
    return FakeI2CBus()


@pytest.fixture
def pty_instrument() -> Iterator[PtyInstrument]:
    """A pty: the driver opens ``.port``, the test plays the instrument (``serve(answer)``)."""
    with PtyInstrument() as pty:
        yield pty


@pytest.fixture
def linked_ptys() -> Iterator[LinkedPtys]:
    """Two linked pty devices ``.a`` and ``.b`` (e.g. a Modbus RTU server and client)."""
    with LinkedPtys() as link:
        yield link
