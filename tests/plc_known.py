"""A pymodbus TCP server holding every Modbus type in every byte/word order with known values,
encoded independently of our codec (shared by the lossless and the Sparkplug end-to-end tests)."""

from __future__ import annotations

import array
import asyncio
import contextlib
import math
import struct
import threading
from collections.abc import Iterator
from typing import Any

import msgspec
from edge_agent.drivers.modbus.simulator import PlcImage, bound_port, serve_tcp
from edge_agent.drivers.modbus.tags import Tag

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
    add("setpoint", "uint16", "ABCD", 100, 100, writable=True, min=0, max=500, unit="rpm")
    return tags, regs, expected


@contextlib.contextmanager
def known_plc_server() -> Iterator[tuple[int, list[dict[str, Any]], dict[str, Any]]]:
    """A pymodbus TCP server in its own thread, serving registers we encoded ourselves."""
    tags, regs, expected = tag_map()
    image = PlcImage([msgspec.convert(t, Tag) for t in tags], change_per_s=0.0, count_per_s=0.0)
    for name, content in regs.items():
        tag = next(t for t in image.tags if t.name == name)
        image.unit(1).regs[tag.table][tag.address : tag.address + len(content)] = array.array("H", content)
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


def toml_tags(tags: list[dict[str, Any]]) -> str:
    rows = []
    for t in tags:
        cells = ", ".join(f"{k} = {_toml(v)}" for k, v in t.items())
        rows.append("  { " + cells + " },")
    return "\n".join(rows)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else repr(v)
