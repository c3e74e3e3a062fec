"""The plc plugin with the modbus driver's simulated backend (and a TCP server for one test)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from edge_agent.drivers.modbus import ModbusDriver, ModbusOptions
from edge_agent.drivers.modbus.backends import SimSource
from edge_agent.drivers.modbus.simulator import PlcImage, bound_port, serve_tcp
from edge_agent.drivers.modbus.tags import Table, Tag
from edge_agent.plugins.contract import UnknownCommand
from edge_agent.plugins.plc.plugin import SPEC
from edge_agent.plugins.testing.harness import Harness, ManualClock


def driver(**kw: Any) -> ModbusDriver:
    kw.setdefault("backend", "sim")
    kw.setdefault("timeout_s", 0.2)
    kw.setdefault("retries", 0)
    return ModbusDriver(msgspec.convert(kw, ModbusOptions))


def image_of(d: ModbusDriver) -> PlcImage:
    assert isinstance(d.source, SimSource)
    return d.source.image


def test_500_tags_with_2_percent_changing_publish_about_10_values_per_second() -> None:
    d = driver(layout="reference")
    h = Harness(SPEC, options={"heartbeat_s": 3600}, driver=d, clock=ManualClock())
    now = [0.0]

    async def main() -> None:
        await h.start()
        img = image_of(d)
        img.clock = lambda: now[0]
        img.advance(0.0)
        await h.poll()
        assert len(h.emitted[0].values) == 500 and not h.emitted[0].quality
        for _ in range(100):
            now[0] += 1.0
            await h.poll(advance_s=1.0)
        await h.close()

    asyncio.run(main())
    per_s = sum(len(e.values) for e in h.emitted[1:]) / 100
    assert 8.0 <= per_s <= 10.5  # 2 % of 500 change per second (a walk may step back onto a value)


def test_heartbeat_republishes_unchanged_values() -> None:
    d = driver(tags=[{"name": "a", "address": 0}, {"name": "b", "address": 1}])
    h = Harness(SPEC, options={"heartbeat_s": 10}, driver=d)

    async def main() -> None:
        await h.start()
        image_of(d).change_per_s = 0.0
        await h.poll(times=12, advance_s=1.0)
        await h.close()

    asyncio.run(main())
    assert [len(e.values) for e in h.emitted] == [2, 2]  # at t = 0 and t = 10 s


def test_tag_deadband_percent_of_span_comes_from_the_tag_map() -> None:
    tags = [{"name": "p", "address": 0, "type": "float32", "min": 0.0, "max": 10.0, "deadband_percent": 5.0}]
    d = driver(tags=tags)
    h = Harness(SPEC, options={"heartbeat_s": 3600}, driver=d)
    tag = d.by_name["p"]

    async def main() -> None:
        await h.start()
        img = image_of(d)
        img.change_per_s = 0.0
        for v in (5.0, 5.3, 5.45, 5.51, 5.2):
            img.set(tag, v)
            await h.poll()
        await h.close()

    asyncio.run(main())
    assert [e.values["p"] for e in h.emitted] == [5.0, pytest.approx(5.51)]  # band 0.5 around 5.0 then 5.51


def test_device_fault_is_one_event_per_episode_and_values_turn_null() -> None:
    d = driver(tags=[{"name": "a", "address": 0}], backoff_min_s=0.001, backoff_max_s=0.002)
    h = Harness(SPEC, options={"heartbeat_s": 3600}, driver=d)

    async def main() -> None:
        await h.start()
        await h.poll()
        image_of(d).silent_units.add(1)
        await h.poll(times=5)
        image_of(d).silent_units.clear()
        await asyncio.sleep(0.01)
        await h.poll(times=2)
        await h.close()

    asyncio.run(main())
    kinds = [e.kind for e in h.events]
    assert kinds == ["device_fault", "device_ok"]
    assert h.events[0].fields["quality"] == "timeout"
    assert h.emitted[1].values == {"a": None} and h.emitted[1].quality == {"a": "timeout"}
    assert h.emitted[2].quality == {} and h.emitted[2].values["a"] is not None
    assert len(h.emitted) == 3


@pytest.mark.slow
def test_illegal_address_is_one_tag_fault_event_and_others_keep_publishing() -> None:
    tags = [Tag(name=f"r{i}", address=i) for i in range(10)]
    image = PlcImage(tags)
    image.undefine(1, Table.HOLDING_REGISTER, 4)

    async def main() -> Harness:
        server = await serve_tcp(image, "127.0.0.1", 0)
        d = driver(backend="hw", transport="tcp", port=bound_port(server), tags=[msgspec.to_builtins(t) for t in tags])
        h = Harness(SPEC, options={"heartbeat_s": 3600}, driver=d)
        try:
            await h.start()
            await h.poll(times=3)
            await h.close()
        finally:
            await server.shutdown()
        return h

    h = asyncio.run(main())
    assert [e.kind for e in h.events] == ["tag_fault"]
    assert h.events[0].fields == {"quality": "illegal_address", "tags": ["r4"]}
    assert h.emitted[0].quality == {"r4": "illegal_address"} and len(h.emitted[0].values) == 10


def test_write_command_is_guarded() -> None:
    tags = [
        {"name": "sp", "address": 0, "type": "int16", "scale": 0.1, "writable": True, "min": 0.0, "max": 100.0},
        {"name": "ro", "address": 1},
    ]

    async def run(allow: bool, name: str, args: dict[str, Any]) -> Any:
        d = driver(tags=tags)
        h = Harness(SPEC, options={"allow_writes": allow}, driver=d)
        await h.start()
        try:
            return await h.plugin.command(name, args), image_of(d).unit(1).regs[Table.HOLDING_REGISTER][0], h
        finally:
            await h.close()

    result, raw, h = asyncio.run(run(True, "write", {"tag": "sp", "value": 42.5}))
    assert result == {"tag": "sp", "value": 42.5, "ok": True} and raw == 425
    assert h.events[-1].kind == "tag_write"
    cases: list[tuple[bool, str, dict[str, Any], type[Exception], str]] = [
        (False, "write", {"tag": "sp", "value": 1}, ValueError, "allow_writes = false"),
        (True, "write", {"tag": "ro", "value": 1}, ValueError, "not a writable tag"),
        (True, "write", {"tag": "sp", "value": 120}, ValueError, r"outside 0.0..100.0"),
        (True, "write", {"tag": "sp"}, ValueError, "needs"),
        (True, "capture", {}, UnknownCommand, "capture"),
    ]
    for allow, name, args, exc, match in cases:
        with pytest.raises(exc, match=match):
            asyncio.run(run(allow, name, args))


@pytest.mark.slow
def test_a_busy_plc_raises_its_own_event_and_recovery_shows_at_the_next_poll() -> None:
    """Silent, then busy, then answering again: each state raises its event at the next poll (a
    single-unit PLC is not left in a backoff that hides a busy answer or delays device_ok)."""
    tags = [Tag(name=f"r{i}", address=i) for i in range(4)]
    image = PlcImage(tags)
    kinds: list[tuple[str, Any]] = []

    async def main() -> None:
        server = await serve_tcp(image, "127.0.0.1", 0)
        opts = {"backend": "hw", "transport": "tcp", "port": bound_port(server), "timeout_s": 0.3, "backoff_min_s": 5.0}
        d = driver(**opts, tags=[msgspec.to_builtins(t) for t in tags])
        h = Harness(SPEC, options={"heartbeat_s": 3600}, driver=d)
        try:
            await h.start()
            for state, polls in (("silent", 3), ("busy", 2), ("ok", 2)):
                image.silent_units = {1} if state == "silent" else set()
                image.busy_units = {1} if state == "busy" else set()
                for _ in range(polls):
                    await h.poll()
                    kinds.extend((e.kind, e.fields.get("quality")) for e in h.events)
                    h.events.clear()
                kinds.append((state, "end"))
            await h.close()
        finally:
            await server.shutdown()

    asyncio.run(main())
    assert kinds == [
        ("device_fault", "timeout"), ("silent", "end"),
        ("device_fault", "device_busy"), ("busy", "end"),
        ("device_ok", None), ("ok", "end"),
    ]  # fmt: skip
