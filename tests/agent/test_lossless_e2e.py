"""Every Modbus type in every byte/word order arrives exactly, end to end: a pymodbus server with
independently encoded registers, the agent as a process, mosquitto, and a MessagePack subscriber."""

from __future__ import annotations

import asyncio
import math
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from edge_agent.agent.broker import LocalBroker
from edge_agent.drivers.modbus.simplc import PlcImage, bound_port, serve_tcp
from edge_agent.drivers.modbus.tags import Tag
from support import AgentProcess, Subscriber, write_config

ORDERS = {"ABCD": (False, False), "CDAB": (False, True), "BADC": (True, False), "DCBA": (True, True)}
CODES = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q"}
CODES |= {"float32": "f", "float64": "d"}
# Raw contents chosen where a float32 on the wire would lose: past 2**24, 15-17 significant digits.
RAW: dict[str, list[float | int]] = {
    "int16": [-32768, 32767],
    "uint16": [65535],
    "int32": [-2_147_483_000, 16_777_217],
    "uint32": [4_294_967_000, 16_777_217],
    "int64": [-(2**62) - 12345, 2**53 + 1],
    "uint64": [2**64 - 3],
    "float32": [123.456, -1.5e-7],
    "float64": [math.pi, -27182818284.59045, 1e-300],
}
# (type, raw, scale, offset): scaled integers become floats and must keep every digit.
SCALED = [("uint32", 1_234_567, 0.001, 0.0), ("int32", -987_654_321, 0.01, 5.0), ("int16", 625, 0.1, -40.0)]


def wire(type_: str, raw: float | int, order: str) -> list[int]:
    """Independent encoder: big-endian bytes, then swap bytes and/or reverse registers."""
    data = struct.pack(">" + CODES[type_], raw)
    regs = [data[i : i + 2] for i in range(0, len(data), 2)]
    swap_bytes, reverse_words = ORDERS[order]
    if swap_bytes:
        regs = [r[::-1] for r in regs]
    if reverse_words:
        regs.reverse()
    return [int.from_bytes(r, "big") for r in regs]


def as_read(type_: str, raw: float | int) -> float | int:
    """What the registers hold, as the PLC means it (a float32 is the nearest single)."""
    return struct.unpack(">" + CODES[type_], struct.pack(">" + CODES[type_], raw))[0]  # type: ignore[no-any-return]


def tag_map() -> tuple[list[dict[str, Any]], dict[str, list[int]], dict[str, Any]]:
    """Tags (TOML-ready), their raw registers, and the exact values expected at the subscriber."""
    tags: list[dict[str, Any]] = []
    regs: dict[str, list[int]] = {}
    expected: dict[str, Any] = {}
    addr = 0

    def add(name: str, type_: str, order: str, raw: float | int, value: Any, **kw: Any) -> None:
        nonlocal addr
        swap, reverse = ORDERS[order]
        bo, wo = ("little" if swap else "big"), ("little" if reverse else "big")
        tags.append({"name": name, "address": addr, "type": type_, "byte_order": bo, "word_order": wo, **kw})
        regs[name] = wire(type_, raw, order)
        expected[name] = value
        addr += len(regs[name])

    for type_, raws in RAW.items():
        for order in ORDERS:
            for i, raw in enumerate(raws):
                add(f"{type_}_{order}_{i}", type_, order, raw, as_read(type_, raw))
    for type_, raw, scale, offset in SCALED:
        for order in ORDERS:
            add(f"scaled_{type_}_{order}", type_, order, raw, raw * scale + offset, scale=scale, offset=offset)
    return tags, regs, expected


@pytest.fixture
def plc_server() -> Iterator[tuple[int, list[dict[str, Any]], dict[str, Any]]]:
    """A pymodbus TCP server in its own thread, serving registers we encoded ourselves."""
    tags, regs, expected = tag_map()
    image = PlcImage([msgspec.convert(t, Tag) for t in tags], change_per_s=0.0, count_per_s=0.0)
    for name, content in regs.items():
        tag = next(t for t in image.tags if t.name == name)
        image.unit(1).regs[tag.table][tag.address : tag.address + len(content)] = __import__("array").array(
            "H", content
        )
    loop = asyncio.new_event_loop()
    started: list[Any] = []
    ready = threading.Event()

    async def start() -> None:
        started.append(await serve_tcp(image, "127.0.0.1", 0))
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    assert ready.wait(10), "pymodbus server did not start"
    try:
        yield bound_port(started[0]), tags, expected
    finally:
        asyncio.run_coroutine_threadsafe(started[0].shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _toml_tags(tags: list[dict[str, Any]]) -> str:
    rows = []
    for t in tags:
        cells = ", ".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in t.items())
        rows.append("  { " + cells + " },")
    return "\n".join(rows)


def test_every_type_and_order_arrives_exactly(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber, plc_server: tuple[int, Any, Any]
) -> None:
    port, tags, expected = plc_server
    instances = f"""
[[instances]]
name = "plc"
plugin = "plc"
interval_s = 0.5
options = {{ report_by_exception = false }}
[instances.driver]
type = "modbus"
port = {port}
tags = [
{_toml_tags(tags)}
]
"""
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=instances)
    agent = AgentProcess(cfg, broker.url)
    try:
        msgs = subscriber.wait_for(lambda: subscriber.on("edge/t1/data/plc"), 20, "plc data")
        got = msgs[0].env["d"]
        assert "q" not in msgs[0].env, msgs[0].env.get("q")
        wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v or type(got.get(k)) is not type(v)}
        assert not wrong, f"values not exact (got, expected): {wrong}"
        # the three witnesses, by name
        assert got["float64_ABCD_0"] == 3.141592653589793
        assert got["float64_DCBA_1"] == -27182818284.59045
        assert got["scaled_uint32_CDAB"] == 1234.567
    finally:
        assert agent.stop() == 0
