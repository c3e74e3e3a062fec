"""Modbus TCP/RTU driver: a tag map read with the fewest requests, decoded to engineering values.

See docs/plc.md for the options and the tag fields.
"""

from __future__ import annotations

from edge_agent.drivers.contract import Capability, DriverSpec, DType, Values, ValueSpec
from edge_agent.drivers.modbus.driver import ModbusDriver
from edge_agent.drivers.modbus.options import Backend, ModbusOptions, Transport, all_tags, check
from edge_agent.drivers.modbus.plan import build_plan
from edge_agent.drivers.modbus.tags import DataType, Order, PollClass, Table, Tag, TagMapError


def plan_lines(o: ModbusOptions) -> list[str]:
    """The request plan, one line per request (``edge-agent check-config --plan``)."""
    try:
        tags = all_tags(o)
    except TagMapError as exc:
        return [f"no plan: {exc}"]
    plan = build_plan(tags, o.unit_id, o.limits())
    if o.backend is Backend.SIM:
        where = "sim"
    else:
        where = f"tcp {o.host}:{o.port}" if o.transport is Transport.TCP else f"rtu {o.serial_port}"
    fast = sum(1 for r in plan if r.poll is PollClass.FAST)
    head = f"modbus {where}: {len(tags)} tags in {len(plan)} requests ({fast} every poll)"
    return [head] + [r.describe() for r in plan]


def tag_dtype(tag: Tag) -> DType:
    """The dtype of a tag's engineering value: integers stay integers unless scaled."""
    if tag.type in (DataType.BOOL, DataType.BIT):
        return DType.BOOL
    if tag.type is DataType.STRING:
        return DType.STR
    if tag.type is DataType.FLOAT64:
        return DType.FLOAT64
    if tag.type is DataType.FLOAT32:
        return DType.FLOAT32
    if tag.scale == 1.0 and tag.offset == 0.0:
        return DType.INT
    # a scaled 16-bit register has < 5 significant digits; wider counters need double precision
    return DType.FLOAT32 if tag.type in (DataType.INT16, DataType.UINT16) else DType.FLOAT64


def declared(o: ModbusOptions) -> list[ValueSpec]:
    """One value per tag of the tag map (none when the map cannot be read: check() says why)."""
    try:
        tags = all_tags(o)
    except TagMapError:
        return []
    return [
        ValueSpec(
            t.name,
            tag_dtype(t),
            t.unit,
            f"{t.table} {t.address} ({t.type}{', ' + t.poll if t.poll is PollClass.SLOW else ''})",
            t.writable,
        )
        for t in tags
    ]


# An async driver's reading type cannot be inferred from ``async def read``: annotate it.
SPEC: DriverSpec[ModbusOptions, Values] = DriverSpec(
    name="modbus",
    factory=ModbusDriver,
    options=ModbusOptions,
    provides=frozenset({Capability.REGISTERS, Capability.VALUES}),
    description="Modbus TCP/RTU client with request coalescing, byte/word orders and fault isolation",
    check=check,
    plan=plan_lines,
    values=declared,
    example={
        "tags": [
            {"name": "line_speed", "address": 0, "type": "float32", "unit": "m/min"},
            {"name": "part_count", "address": 2, "type": "uint32"},
            {"name": "oven_temp", "table": "input_register", "address": 0, "type": "int16", "scale": 0.1},
            {"name": "running", "table": "coil", "address": 0, "type": "bool", "writable": True},
        ]
    },
    device_access=lambda o: {"dialout"} if o.backend is Backend.HW and o.transport is Transport.RTU else set(),
)

__all__ = ["SPEC", "DataType", "ModbusDriver", "ModbusOptions", "Order", "PollClass", "Table", "Tag"]
