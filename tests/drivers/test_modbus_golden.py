"""Golden cases (Telegraf-style): each folder of tests/golden/modbus holds a driver config
(``config.toml``, maybe a ``tags.csv``) and either raw device contents (``registers.toml``) with
the decoded values expected (``expected.toml``), or the errors expected (``expected_error.txt``)."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest
from edge_agent.drivers.modbus import SPEC, ModbusDriver, ModbusOptions
from edge_agent.drivers.modbus.backends import SimSource
from edge_agent.drivers.modbus.tags import Table

GOLDEN = Path(__file__).parent.parent / "golden" / "modbus"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def load_options(case: Path) -> ModbusOptions:
    raw = tomllib.loads((case / "config.toml").read_text())
    if "tags_csv" in raw:
        raw["tags_csv"] = str(case / raw["tags_csv"])
    return msgspec.convert({"backend": "sim", **raw}, ModbusOptions)


def problems(case: Path) -> list[str]:
    try:
        o = load_options(case)
    except msgspec.ValidationError as exc:
        return [str(exc)]
    assert SPEC.check is not None
    return SPEC.check(o)


async def decode(case: Path) -> dict[str, Any]:
    d = ModbusDriver(load_options(case))
    await d.open()
    assert isinstance(d.source, SimSource)
    image = d.source.image
    image.change_per_s = image.count_per_s = 0.0
    contents = tomllib.loads((case / "registers.toml").read_text())
    for block in contents.get("registers", []):
        regs = image.unit(block.get("unit_id", 1)).regs[Table(block["table"])]
        regs[block["address"] : block["address"] + len(block["values"])] = type(regs)("H", block["values"])
    for block in contents.get("bits", []):
        bits = image.unit(block.get("unit_id", 1)).bits[Table(block["table"])]
        bits[block["address"] : block["address"] + len(block["values"])] = bytes(map(int, block["values"]))
    reading = await d.read()
    await d.close()
    assert not reading.quality
    return dict(reading.values)


@pytest.mark.parametrize("name", CASES)
def test_golden_case(name: str) -> None:
    case = GOLDEN / name
    if (case / "expected_error.txt").exists():
        got = "\n".join(problems(case))
        for line in (case / "expected_error.txt").read_text().splitlines():
            assert line in got, f"{name}: expected error {line!r} in:\n{got}"
        return
    assert problems(case) == []
    expected = tomllib.loads((case / "expected.toml").read_text())
    values = asyncio.run(decode(case))
    assert set(values) == set(expected)
    for key, want in expected.items():
        got = values[key]
        assert got == (pytest.approx(want, rel=1e-6) if isinstance(want, float) else want), key
        assert isinstance(got, float) if isinstance(want, float) else type(got) is type(want), key
