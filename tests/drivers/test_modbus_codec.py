"""Known-answer tests of the register codec, the tag map and the request plan."""

from __future__ import annotations

import math
import struct

import msgspec
import pytest
from edge_agent.drivers.modbus.codec import decode_registers, encode_value
from edge_agent.drivers.modbus.plan import Limits, ReadRequest, build_plan, split
from edge_agent.drivers.modbus.tags import (
    DataType,
    Order,
    PollClass,
    Table,
    Tag,
    TagMapError,
    check_tags,
    parse_csv,
    to_csv,
)

ORDERS = {
    "ABCD": (Order.BIG, Order.BIG),
    "CDAB": (Order.BIG, Order.LITTLE),
    "BADC": (Order.LITTLE, Order.BIG),
    "DCBA": (Order.LITTLE, Order.LITTLE),
}


def tag(**kw: object) -> Tag:
    kw.setdefault("name", "t")
    kw.setdefault("address", 0)
    return msgspec.convert(kw, Tag)


# 123.456 as float32 is 0x42F6E979: the four layouts as published in PLC manuals
FLOAT_123_456 = {"ABCD": [0x42F6, 0xE979], "CDAB": [0xE979, 0x42F6], "BADC": [0xF642, 0x79E9], "DCBA": [0x79E9, 0xF642]}


@pytest.mark.parametrize("order", ORDERS)
def test_float32_in_all_four_orders(order: str) -> None:
    bo, wo = ORDERS[order]
    t = tag(type="float32", byte_order=bo, word_order=wo)
    assert decode_registers(t, FLOAT_123_456[order]) == pytest.approx(123.456, abs=1e-4)
    assert encode_value(t, 123.456) == FLOAT_123_456[order]


@pytest.mark.parametrize(
    ("type_", "order", "regs", "expected"),
    [
        ("int16", "ABCD", [0xFFFE], -2),
        ("int16", "BADC", [0xFEFF], -2),
        ("uint16", "ABCD", [0xFFFE], 65534),
        ("int32", "ABCD", [0xFFFE, 0x7960], -100000),
        ("int32", "CDAB", [0x7960, 0xFFFE], -100000),
        ("uint32", "DCBA", [0x6079, 0xFEFF], 4294867296),
        ("int64", "ABCD", [0x0123, 0x4567, 0x89AB, 0xCDEF], 0x0123456789ABCDEF),
        ("int64", "CDAB", [0xCDEF, 0x89AB, 0x4567, 0x0123], 0x0123456789ABCDEF),
        ("uint64", "BADC", [0x2301, 0x6745, 0xAB89, 0xEFCD], 0x0123456789ABCDEF),
        ("uint64", "DCBA", [0xEFCD, 0xAB89, 0x6745, 0x2301], 0x0123456789ABCDEF),
        ("float64", "ABCD", [0x4005, 0xBF0A, 0x8B14, 0x5769], 2.718281828459045),
        ("float64", "DCBA", [0x6957, 0x148B, 0x0ABF, 0x0540], 2.718281828459045),
    ],
)
def test_integer_and_double_known_answers(type_: str, order: str, regs: list[int], expected: float) -> None:
    bo, wo = ORDERS[order]
    t = tag(type=type_, byte_order=bo, word_order=wo)
    value = decode_registers(t, regs)
    assert value == expected and type(value) is type(expected)
    assert encode_value(t, expected) == regs


def test_scale_offset_and_integers_stay_exact() -> None:
    t = tag(type="int16", scale=0.1, offset=-10.0)
    assert decode_registers(t, [235]) == pytest.approx(13.5)
    assert encode_value(t, 13.5) == [235]
    assert decode_registers(tag(type="uint16"), [7]) == 7


def test_bits_of_a_register_and_byte_swapped_bits() -> None:
    assert decode_registers(tag(type="bit", bit=0), [0x8001]) is True
    assert decode_registers(tag(type="bit", bit=15), [0x8001]) is True
    assert decode_registers(tag(type="bit", bit=1), [0x8001]) is False
    # the device sends its register bytes swapped: bit 0 travels in the second byte's place
    assert decode_registers(tag(type="bit", bit=0, byte_order="little"), [0x0100]) is True


def test_strings_with_padding_and_swapped_bytes() -> None:
    assert decode_registers(tag(type="string", length=4), [0x5055, 0x4D50, 0x2D37, 0x0000]) == "PUMP-7"
    assert decode_registers(tag(type="string", length=2, byte_order="little"), [0x5550, 0x504D]) == "PUMP"
    assert encode_value(tag(type="string", length=2), "AB") == [0x4142, 0x0000]
    with pytest.raises(ValueError, match="longer than 4"):
        encode_value(tag(type="string", length=2), "ABCDE")


def test_encode_range_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="int16"):
        encode_value(tag(type="int16", scale=0.1), 4000.0)
    with pytest.raises(ValueError, match="float32"):
        encode_value(tag(type="float32"), 1e39)
    assert math.isnan(struct.unpack(">f", struct.pack(">f", math.nan))[0])


def test_tag_cross_field_problems() -> None:
    problems = check_tags(
        [
            tag(name="a", type="bool"),
            tag(name="a", table="coil", type="uint16"),
            tag(name="s", type="string"),
            tag(name="w", table="input_register", writable=True),
        ]
    )
    text = "\n".join(problems)
    assert "tags[0].type: 'bool' is for coils" in text
    assert "tags[1].type: a coil holds single bits" in text
    assert "tags[1].name: duplicate of tags[0]" in text
    assert "tags[2].length: required for type 'string'" in text
    assert "tags[3].writable: a input_register is read-only" in text


def test_csv_round_trip_and_row_column_errors() -> None:
    tags = [
        tag(name="a", address=3, type="float32", word_order="little", unit="bar", writable=True, min=0, max=5),
        tag(name="b", table="coil", address=7, type="bool", poll="slow"),
    ]
    assert parse_csv(to_csv(tags)) == tags
    bad = "name,table,address,type\nok,holding_register,1,int16\nx,holding_register,abc,int16\ny,coils,2,bool\n"
    with pytest.raises(TagMapError) as err:
        parse_csv(bad, "plant.csv")
    msg = str(err.value)
    assert "plant.csv: row 3, column address: expected an integer" in msg
    assert "row 4, column table: not one of coil, discrete_input, input_register, holding_register" in msg
    assert "abc" not in msg and "coils" not in msg, "an error never quotes the file's content"
    with pytest.raises(TagMapError, match=r"row 1: column 2 is not a tag field \(did you mean 'address'\?\)"):
        parse_csv("name,adress\nx,1\n")
    with pytest.raises(TagMapError) as err:
        parse_csv("root:x:0:0:root:/root:/bin/bash\n", "/etc/passwd")
    assert "root" not in str(err.value).replace("/etc/passwd", "")


def _minimum(addresses: list[tuple[int, int]], size: int, gap: int) -> int:
    """Independent oracle: dynamic programming over contiguous runs of the sorted tags."""
    spans = sorted(addresses)
    best = [0] + [10**9] * len(spans)
    for i in range(1, len(spans) + 1):
        for j in range(i - 1, -1, -1):
            run = spans[j:i]
            lo, hi = run[0][0], max(e for _, e in run)
            gaps_ok = all(run[k + 1][0] - max(e for _, e in run[: k + 1]) - 1 <= gap for k in range(len(run) - 1))
            if hi - lo + 1 > size or not gaps_ok:
                break
            best[i] = min(best[i], best[j] + 1)
    return best[-1]


@pytest.mark.parametrize(("size", "gap"), [(125, 16), (125, 0), (40, 5), (7, 3)])
def test_plan_is_the_minimum_the_limits_allow(size: int, gap: int) -> None:
    import random

    rng = random.Random(size * 100 + gap)
    tags, addr = [], 0
    for i in range(300):
        addr += rng.choice([0, 1, 1, 2, 3, 8, 20])
        t = rng.choice(["uint16", "float32", "float64", "int32"])
        tags.append(tag(name=f"t{i}", address=addr, type=t))
        addr += tags[-1].count
    plan = build_plan(tags, 1, Limits(max_registers=size, max_gap=gap))
    assert len(plan) == _minimum([(t.address, t.end) for t in tags], size, gap)
    assert sorted(t.name for r in plan for t in r.tags) == sorted(t.name for t in tags)
    assert all(r.count <= size for r in plan)


def test_plan_groups_by_unit_table_and_poll_class_and_describes_itself() -> None:
    tags = [
        tag(name="a", address=0),
        tag(name="b", address=1, unit_id=2),
        tag(name="c", address=2, poll="slow"),
        tag(name="d", table="coil", type="bool", address=5),
        tag(name="e", table="coil", type="bool", address=1999 + 5),
    ]
    plan = build_plan(tags, 1, Limits())
    lines = [r.describe() for r in plan]
    assert lines == [
        "unit 1 coil 5-5 (1 tags, 0 gap) fast",
        "unit 1 coil 2004-2004 (1 tags, 0 gap) fast",
        "unit 1 holding_register 0-0 (1 tags, 0 gap) fast",
        "unit 1 holding_register 2-2 (1 tags, 0 gap) slow",
        "unit 2 holding_register 1-1 (1 tags, 0 gap) fast",
    ]
    wide = build_plan([tag(name="x", address=0), tag(name="y", address=10, type="float32")], 1, Limits())
    assert wide[0].describe() == "unit 1 holding_register 0-11 (2 tags, 9 gap) fast"
    halves = split(wide[0], Limits())
    assert halves is not None and [h.address for h in halves] == [0, 10]
    assert split(ReadRequest(1, Table.COIL, 0, 1, PollClass.FAST, (tags[3],)), Limits()) is None
    assert DataType.INT64.is_integer


def test_the_example_tag_csv_is_the_reference_layout() -> None:
    from pathlib import Path

    from edge_agent.drivers.modbus.simulator import reference_layout
    from edge_agent.drivers.modbus.tags import load_csv

    csv_path = Path(__file__).parent.parent.parent / "examples" / "plc-reference-tags.csv"
    assert load_csv(csv_path) == reference_layout()
    assert len(build_plan(reference_layout(), 1, Limits())) == 8
