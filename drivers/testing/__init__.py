"""Test tools for driver and plugin authors, shipped in the package (no hardware needed).

* :class:`DriverConformance`: subclass it in your tests to run the whole conformance kit.
* :class:`FakeI2CBus`, :class:`FakeSpiDev`, :class:`RegisterChip`: emulate your chip's registers.
* :class:`PtyInstrument`, :class:`LinkedPtys`: serial lines on ptys.
* :class:`FaultPlan`, :func:`inject_faults`: make a bus's or a driver's calls fail, hang or slow down.
* :class:`ManualClock`: time that moves only when the test says so.

The pytest plugin (``edge_agent.drivers.testing.pytest_plugin``, loaded by pytest automatically
when edge-agent is installed) offers them as fixtures: ``manual_clock``, ``fake_i2c_bus``,
``pty_instrument``, ``linked_ptys``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge_agent.drivers.buses.emulated import FakeI2CBus, FakeSpiDev, I2cMsg, RegisterChip
from edge_agent.drivers.testing.calls import Caller, DeadlineExceeded
from edge_agent.drivers.testing.clock import ManualClock
from edge_agent.drivers.testing.faults import AsyncFaultyDriver, FaultPlan, FaultyDriver, inject_faults
from edge_agent.drivers.testing.serial import LinkedPtys, PtyInstrument

__all__ = [
    "AsyncFaultyDriver",
    "Caller",
    "DeadlineExceeded",
    "DriverConformance",
    "FakeI2CBus",
    "FakeSpiDev",
    "FaultPlan",
    "FaultyDriver",
    "I2cMsg",
    "LinkedPtys",
    "ManualClock",
    "PtyInstrument",
    "RegisterChip",
    "inject_faults",
]

if TYPE_CHECKING:  # the class for type checkers; imported on use at run time (it is test code)
    from edge_agent.drivers.testing.kit import DriverConformance


def __getattr__(name: str) -> Any:
    if name == "DriverConformance":  # imported on use: it is test code
        from edge_agent.drivers.testing.kit import DriverConformance

        return DriverConformance
    raise AttributeError(name)
