"""The emulated buses' fault plan as the driver guide says it works (issue 24, item 3)."""

from __future__ import annotations

import pytest
from edge_agent.drivers.buses.emulated import FakeI2CBus, FakeSpiDev, FaultPlan
from edge_agent.drivers.errors import CommError


class Echo:
    def xfer(self, data: list[int]) -> list[int]:
        return data


def test_fault_plan_takes_an_exception_instance_or_a_factory() -> None:
    for error in (CommError("bus reset"), lambda: CommError("bus reset")):
        spi = FakeSpiDev(Echo(), faults=FaultPlan(fail_calls={1, 2}, error=error))
        spi.open(0, 0)
        for _ in range(2):
            with pytest.raises(CommError, match="bus reset"):
                spi.xfer2([1])
        assert spi.xfer2([7]) == [7]


def test_fault_plan_counts_from_open() -> None:
    spi = FakeSpiDev(Echo(), faults=FaultPlan(fail_calls={2}))
    assert spi.xfer2([1]) == [1]  # before open (a test poking the chip): not counted against the plan
    spi.open(0, 0)
    assert spi.xfer2([1]) == [1]  # the first transaction of the opened device
    with pytest.raises(OSError):
        spi.xfer2([2])  # the second
    assert spi.faults.calls == 2


def test_a_fresh_copy_is_raised_each_time() -> None:
    bus = FakeI2CBus({}, faults=FaultPlan(fail_from=1, error=CommError("gone")))
    first = second = None
    for _ in range(2):
        try:
            bus.read(0x44, 2)
        except CommError as exc:
            first, second = second, exc
    assert first is not None and second is not None and first is not second
