"""Modbus TCP/RTU driver: a tag map read with the fewest requests, decoded to engineering values.

See docs/plc.md for the options and the tag fields.
"""

from __future__ import annotations

from edge_agent.drivers.contract import Capability, DriverSpec
from edge_agent.drivers.modbus.driver import ModbusDriver
from edge_agent.drivers.modbus.options import ModbusOptions, all_tags, check
from edge_agent.drivers.modbus.plan import build_plan
from edge_agent.drivers.modbus.tags import DataType, Order, PollClass, Table, Tag, TagMapError


def plan_lines(o: ModbusOptions) -> list[str]:
    """The request plan, one line per request (``edge-agent check-config --plan``)."""
    try:
        tags = all_tags(o)
    except TagMapError as exc:
        return [f"no plan: {exc}"]
    plan = build_plan(tags, o.unit_id, o.limits())
    where = f"{o.host}:{o.port}" if o.backend == "tcp" else o.serial_port if o.backend == "rtu" else "sim"
    fast = sum(1 for r in plan if r.poll is PollClass.FAST)
    head = f"modbus {o.backend} {where}: {len(tags)} tags in {len(plan)} requests ({fast} every poll)"
    return [head] + [r.describe() for r in plan]


SPEC = DriverSpec(
    name="modbus",
    factory=ModbusDriver,
    options=ModbusOptions,
    provides=frozenset({Capability.REGISTERS, Capability.VALUES}),
    description="Modbus TCP/RTU client with request coalescing, byte/word orders and fault isolation",
    check=check,
    plan=plan_lines,
)

__all__ = ["SPEC", "DataType", "ModbusDriver", "ModbusOptions", "Order", "PollClass", "Table", "Tag"]
