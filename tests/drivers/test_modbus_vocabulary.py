"""Issue 20.9: one option vocabulary. ``backend`` is hw/sim as for every driver, ``transport``
tcp/rtu; the old ``backend = "tcp"/"rtu"`` keeps working for one release with a deprecation."""

from __future__ import annotations

import msgspec
import pytest
from edge_agent.drivers.contract import device_groups
from edge_agent.drivers.modbus import SPEC, plan_lines
from edge_agent.drivers.modbus.options import Backend, ModbusOptions, Transport


def convert(**options: object) -> ModbusOptions:
    return msgspec.convert({"layout": "reference", **options}, ModbusOptions)


def test_backend_and_transport() -> None:
    o = convert(transport="rtu", serial_port="/dev/ttyUSB1")
    assert (o.backend, o.transport) == (Backend.HW, Transport.RTU)
    assert plan_lines(o)[0].startswith("modbus rtu /dev/ttyUSB1: 500 tags")
    assert device_groups(SPEC, o) == {"dialout"}
    o = convert()
    assert (o.backend, o.transport) == (Backend.HW, Transport.TCP)
    assert plan_lines(o)[0].startswith("modbus tcp 127.0.0.1:502:")
    assert device_groups(SPEC, o) == set()
    assert plan_lines(convert(backend="sim"))[0].startswith("modbus sim:")
    assert device_groups(SPEC, convert(backend="sim", transport="rtu")) == set()


@pytest.mark.parametrize("old", ["tcp", "rtu"])
def test_the_old_spelling_works_with_a_deprecation_warning(old: str) -> None:
    with pytest.warns(DeprecationWarning, match=f'backend = "{old}" is deprecated: write transport = "{old}"'):
        o = convert(backend=old)
    assert (o.backend, o.transport) == (Backend.HW, Transport(old))


def test_old_and_new_spelling_must_agree() -> None:
    with pytest.raises(msgspec.ValidationError, match='backend = "rtu" \\(deprecated\\) contradicts transport = "tcp"'):
        convert(backend="rtu", transport="tcp")
