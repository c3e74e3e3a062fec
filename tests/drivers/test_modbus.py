"""The Modbus driver against real pymodbus servers (TCP on 127.0.0.1, RTU over a pty pair)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from edge_agent.drivers.contract import Quality, Values
from edge_agent.drivers.errors import CommError, DriverError
from edge_agent.drivers.modbus import SPEC, ModbusDriver, ModbusOptions
from edge_agent.drivers.modbus.simulator import PlcImage, bound_port, serve_rtu, serve_tcp
from edge_agent.drivers.modbus.tags import Order, Table, Tag
from plc_known import ORDERS, wire

SWAPS = ORDERS  # (swap bytes, reverse registers) per byte/word order


def t(name: str, address: int, type_: str = "uint16", order: str = "ABCD", **kw: Any) -> Tag:
    bo = Order.LITTLE if SWAPS[order][0] else Order.BIG
    wo = Order.LITTLE if SWAPS[order][1] else Order.BIG
    return msgspec.convert(dict(name=name, address=address, type=type_, byte_order=bo, word_order=wo, **kw), Tag)


def spread_map() -> tuple[list[Tag], dict[str, Any], list[tuple[Tag, list[int] | bool]]]:
    """Tags over two unit ids and all tables, every type in every order; raw contents; expected values."""
    tags: list[Tag] = []
    expected: dict[str, Any] = {}
    raw: list[tuple[Tag, list[int] | bool]] = []

    def add(tag: Tag, regs: list[int] | bool, value: Any) -> None:
        tags.append(tag)
        raw.append((tag, regs))
        expected[tag.name] = value

    addr = 0
    for type_, value in [
        ("int16", -1234),
        ("uint16", 54321),
        ("int32", -100000),
        ("uint32", 3_000_000_000),
        ("int64", -(2**40) - 7),
        ("uint64", 2**63 + 5),
        ("float32", 123.456),
        ("float64", -9876.54321),
    ]:
        for order in SWAPS:
            tag = t(f"{type_}_{order}", addr, type_, order)
            add(tag, wire(type_, value, order), value)
            addr += tag.count + 5  # small gaps: coalesced
        addr += 40  # a gap larger than max_gap: a new request
    add(t("scaled", 600, "int16", scale=0.1, offset=-40.0), wire("int16", 625, "ABCD"), 22.5)
    add(t("bit3", 601, "bit", bit=3), [0x4008], True)
    add(t("bit14", 601, "bit", bit=14), [0x4008], True)
    add(t("bit0", 601, "bit", bit=0), [0x4008], False)
    add(t("name", 602, "string", length=4), [0x5055, 0x4D50, 0x2D37, 0x0000], "PUMP-7")
    for i in range(130):  # longer than 125 registers: two requests
        add(t(f"run{i}", 1000 + i), [i], i)
    add(t("ir_temp", 7, "int16", table="input_register", scale=0.1), [235], 23.5)
    add(t("ir_far", 5000, "float32", "CDAB", table="input_register"), wire("float32", -1.5, "CDAB"), -1.5)
    for i in range(10):
        add(t(f"coil{i}", i, "bool", table="coil"), i % 3 == 0, i % 3 == 0)
    add(t("coil_far", 3000, "bool", table="coil"), True, True)
    add(t("di", 17, "bool", table="discrete_input", unit_id=2), True, True)
    add(t("u2_speed", 0, "float32", "DCBA", unit_id=2, unit="rpm"), wire("float32", 1450.25, "DCBA"), 1450.25)
    return tags, expected, raw


def load_raw(image: PlcImage, raw: list[tuple[Tag, list[int] | bool]]) -> None:
    """Put independent wire contents into the image (not through our codec)."""
    for tag, content in raw:
        img = image.unit(1 if tag.unit_id is None else tag.unit_id)
        if isinstance(content, bool):
            img.bits[tag.table][tag.address] = int(content)
        else:
            for i, reg in enumerate(content):
                img.regs[tag.table][tag.address + i] = reg


def options(**kw: Any) -> ModbusOptions:
    kw.setdefault("timeout_s", 0.2)
    kw.setdefault("retries", 0)
    return msgspec.convert(kw, ModbusOptions)


async def with_tcp(image: PlcImage, body: Callable[[int], Awaitable[None]]) -> None:
    server = await serve_tcp(image, "127.0.0.1", 0)
    try:
        await body(bound_port(server))
    finally:
        await server.shutdown()


def check_values(v: Values, expected: dict[str, Any]) -> None:
    assert not v.quality
    for name, value in expected.items():
        got = v.values[name]
        assert got == (pytest.approx(value, rel=1e-6) if isinstance(value, float) else value), name
        assert type(got) is type(value), name


@pytest.mark.slow
def test_spread_map_over_tcp_decodes_every_tag_with_the_minimum_requests() -> None:
    tags, expected, raw = spread_map()
    image = PlcImage(tags)
    load_raw(image, raw)
    image.change_per_s = 0.0

    async def body(port: int) -> None:
        o = options(port=port, tags=[msgspec.to_builtins(x) for x in tags])
        d = ModbusDriver(o)
        await d.open()
        before = image.total_requests
        check_values(await d.read(), expected)
        # 8 types x 4 orders in 8 groups, scaled/bits/string, 130 registers (2), 2 input, 2 coil, 1 di, 1 unit 2
        assert image.total_requests - before == len(d.plan) == 8 + 1 + 2 + 2 + 2 + 1 + 1
        assert SPEC.plan is not None and len(SPEC.plan(o)) == len(d.plan) + 1
        await d.close()

    asyncio.run(with_tcp(image, body))


def _socat_pair() -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        ["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"], stderr=subprocess.PIPE, text=True
    )
    names: list[str] = []
    assert proc.stderr is not None
    while len(names) < 2:
        line = proc.stderr.readline()
        if not line:
            break
        names += re.findall(r"PTY is (\S+)", line)
    if len(names) < 2:
        proc.kill()
        pytest.skip("socat did not open a pty pair")
    return proc, names[0], names[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("socat") is None, reason="needs socat for a pty pair")
def test_spread_map_over_rtu_pty_pair() -> None:
    tags, expected, raw = spread_map()
    image = PlcImage(tags)
    load_raw(image, raw)
    image.change_per_s = 0.0
    proc, server_end, client_end = _socat_pair()

    async def main() -> None:
        server = await serve_rtu(image, server_end, baudrate=115200)
        d = ModbusDriver(
            options(
                transport="rtu",
                serial_port=client_end,
                baudrate=115200,
                timeout_s=1.0,
                tags=[msgspec.to_builtins(x) for x in tags],
            )
        )
        try:
            await d.open()
            before = image.total_requests
            check_values(await d.read(), expected)
            assert image.total_requests - before == len(d.plan)
        finally:
            await d.close()
            await server.shutdown()

    try:
        asyncio.run(main())
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.slow
def test_exception_responses_mark_their_tags_and_a_silent_unit_backs_off() -> None:
    tags = [t("a", 0), t("b", 1), t("c", 0, unit_id=2), t("d", 0, unit_id=3)]
    image = PlcImage(tags)

    async def body(port: int) -> None:
        d = ModbusDriver(options(port=port, tags=[msgspec.to_builtins(x) for x in tags], backoff_min_s=30))
        await d.open()
        image.busy_units.add(2)
        image.silent_units.add(3)
        v = await d.read()
        assert set(v.values) == {"a", "b"}
        assert v.quality == {"c": Quality.DEVICE_BUSY, "d": Quality.TIMEOUT}
        sent_to_3 = image.requests[(3, 3)]
        v = await d.read()  # unit 3 is in backoff: no request, same quality
        assert image.requests[(3, 3)] == sent_to_3 and v.quality["d"] == Quality.TIMEOUT
        image.busy_units.clear()
        assert "c" in (await d.read()).values
        image.busy_units.update({1, 2, 3})
        with pytest.raises(DriverError) as err:  # nothing answered: one device-level error
            await d.read()
        assert err.value.quality == "device_busy"
        await d.close()

    asyncio.run(with_tcp(image, body))


@pytest.mark.slow
def test_illegal_address_is_isolated_to_the_bad_tag() -> None:
    tags = [t(f"r{i}", i) for i in range(40)]
    tags[17] = t("missing", 17)
    image = PlcImage(tags)
    image.undefine(1, Table.HOLDING_REGISTER, 17)  # not served: it answers "illegal data address"

    async def body(port: int) -> None:
        d = ModbusDriver(options(port=port, tags=[msgspec.to_builtins(x) for x in tags], reprobe_every=4))
        await d.open()
        v = await d.read()
        assert v.quality == {"missing": Quality.ILLEGAL_ADDRESS}
        assert len(v.values) == 39 and v.values["r18"] == image.values["r18"]
        before = image.total_requests
        v = await d.read()  # the refined plan: good halves only, no exception any more
        assert v.quality == {"missing": Quality.ILLEGAL_ADDRESS} and len(v.values) == 39
        assert image.total_requests - before == len(d.plan) <= 6
        image.unit(1).define(Table.HOLDING_REGISTER, 17, 1)  # the PLC program now has it
        for _ in range(3):  # reprobe_every = 4: the 4th read retries the isolated tag
            v = await d.read()
        assert v.quality == {} and v.values["missing"] == image.values["missing"]
        assert (await d.read()).quality == {}
        await d.close()

    asyncio.run(with_tcp(image, body))


@pytest.mark.slow
def test_one_unplugged_device_does_not_delay_another() -> None:
    tags = [t(f"r{i}", i) for i in range(10)]
    spec = [msgspec.to_builtins(x) for x in tags]
    live, mute, gone = PlcImage(tags), PlcImage(tags), PlcImage(tags)
    mute.silent_units.add(1)  # accepts the connection, never answers: the slowest failure
    polls = {"live": 0, "mute": 0, "gone": 0}

    async def loop(d: ModbusDriver, key: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                v = await d.read()
                assert not v.quality and key == "live"
                polls[key] += 1
            except DriverError:
                polls[key] -= 1
            await asyncio.sleep(0.05)

    async def main() -> None:
        servers = [await serve_tcp(img, "127.0.0.1", 0) for img in (live, mute, gone)]
        drivers = [
            ModbusDriver(options(port=bound_port(s), tags=spec, timeout_s=0.5, backoff_min_s=0.1)) for s in servers
        ]
        for d in drivers:
            await d.open()
        await servers[2].shutdown()  # unplugged: the connection drops, reconnects are refused
        stop = asyncio.Event()
        tasks = [asyncio.create_task(loop(d, k, stop)) for d, k in zip(drivers, polls, strict=True)]
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*tasks)
        for d in drivers:
            await d.close()
        for s in servers[:2]:
            await s.shutdown()

    asyncio.run(main())
    # the live device kept its cadence (about 1 s / 0.05 s); the other two only failed
    assert polls["live"] >= 10 and polls["mute"] <= -1 and polls["gone"] <= -1


@pytest.mark.slow
def test_reconnects_after_the_server_comes_back() -> None:
    tags = [t("a", 0)]
    image = PlcImage(tags)

    async def main() -> None:
        server = await serve_tcp(image, "127.0.0.1", 0)
        port = bound_port(server)
        d = ModbusDriver(
            options(port=port, tags=[msgspec.to_builtins(x) for x in tags], backoff_min_s=0.05, backoff_max_s=0.1)
        )
        await d.open()
        assert "a" in (await d.read()).values
        await server.shutdown()
        await asyncio.sleep(0.05)
        with pytest.raises(CommError):
            await d.read()
        server = await serve_tcp(image, "127.0.0.1", port)
        await asyncio.sleep(0.15)  # past the backoff
        for _ in range(20):
            try:
                assert "a" in (await d.read()).values
                break
            except CommError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("never reconnected")
        await d.close()
        await server.shutdown()

    asyncio.run(main())


@pytest.mark.slow
def test_slow_tags_are_read_every_slow_every_polls() -> None:
    tags = [t("fast", 0), t("slow", 100, poll="slow")]
    image = PlcImage(tags)

    async def body(port: int) -> None:
        d = ModbusDriver(options(port=port, tags=[msgspec.to_builtins(x) for x in tags], slow_every=3))
        await d.open()
        seen = [set((await d.read()).values) for _ in range(6)]
        assert seen == [{"fast", "slow"}, {"fast"}, {"fast"}, {"fast", "slow"}, {"fast"}, {"fast"}]
        assert image.total_requests == 8
        await d.close()

    asyncio.run(with_tcp(image, body))


@pytest.mark.slow
def test_writes_only_writable_tags_with_type_and_range_checks() -> None:
    tags = [
        t("sp", 0, "float32", "CDAB", writable=True, min=0.0, max=100.0),
        t("ro", 2),
        t("flag", 3, "bit", bit=4, writable=True),
        t("q", 0, "bool", table="coil", writable=True),
        t("n", 4, "int16", scale=0.1, writable=True),
    ]
    image = PlcImage(tags)

    async def body(port: int) -> None:
        d = ModbusDriver(options(port=port, tags=[msgspec.to_builtins(x) for x in tags]))
        await d.open()
        image.unit(1).regs[Table.HOLDING_REGISTER][3] = 0x0001
        assert await d.write("sp", 42.5) == 42.5
        assert await d.write("flag", True) is True
        assert await d.write("q", 1) is True
        await d.write("n", -12.3)
        v = (await d.read()).values
        assert v["sp"] == 42.5 and v["flag"] is True and v["q"] is True and v["n"] == pytest.approx(-12.3)
        assert image.unit(1).regs[Table.HOLDING_REGISTER][3] == 0x0011  # the other bits kept
        for name, value, match in [
            ("ro", 1, "not a writable tag"),
            ("nope", 1, "not a writable tag"),
            ("sp", 101.0, "outside 0.0..100.0"),
            ("sp", "x", "expected a number"),
            ("flag", 2, "expected true/false"),
            ("n", 4000.0, "int16"),
        ]:
            with pytest.raises(ValueError, match=match):
                await d.write(name, value)
        await d.close()

    asyncio.run(with_tcp(image, body))


def test_sim_backend_serves_the_reference_layout_in_process() -> None:
    async def main() -> None:
        d = ModbusDriver(options(backend="sim", layout="reference"))
        await d.open()
        v = await d.read()
        assert len(v.values) == 500 and not v.quality and len(d.plan) == 8
        assert v.values["recipe"] == "PLC-RECIPE"
        await d.close()

    asyncio.run(main())
    assert SPEC.check is not None and SPEC.check(options(layout="reference")) == []
    assert SPEC.check(options())[0].startswith("tags: no tags")
