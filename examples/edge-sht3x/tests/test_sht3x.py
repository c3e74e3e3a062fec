"""Tests of the sht3x driver: the conformance kit and the datasheet's known answers, no hardware."""

from __future__ import annotations

import pytest
from edge_agent.drivers.errors import CommError
from edge_agent.drivers.testing import DriverConformance, FakeI2CBus
from edge_sht3x import MEASURE_HIGH, SPEC, Sht3xDriver, Sht3xOptions, crc8, decode, humidity_pct, temperature_c
from edge_sht3x.emulator import Sht3xChip


class TestSht3xConformance(DriverConformance):
    spec = SPEC
    options = {"backend": "sim"}
    failing_open_options = {"backend": "hw", "device": "/dev/i2c-99"}  # no such bus: open must fail cleanly


def test_crc_known_answers() -> None:
    assert crc8(bytes([0xBE, 0xEF])) == 0x92  # the datasheet's example (section 4.12)
    assert crc8(bytes([0x00, 0x00])) == 0x81


def test_conversion_known_answers() -> None:
    # the ends and the middle of the datasheet's formulas
    assert temperature_c(0) == -45.0 and temperature_c(0xFFFF) == 130.0
    assert temperature_c(0x6666) == pytest.approx(25.0, abs=0.01)  # 26214 counts
    assert humidity_pct(0) == 0.0 and humidity_pct(0xFFFF) == 100.0
    assert humidity_pct(0x8000) == pytest.approx(50.0, abs=0.001)


def test_decode_a_frame() -> None:
    frame = bytes([0x66, 0x66, crc8(b"\x66\x66"), 0x80, 0x00, crc8(b"\x80\x00")])
    t, rh = decode(frame)
    assert (t, rh) == (pytest.approx(25.0, abs=0.01), pytest.approx(50.0, abs=0.001))
    with pytest.raises(CommError, match="humidity CRC mismatch"):
        decode(frame[:5] + bytes([frame[5] ^ 0xFF]))


def opened(bus: FakeI2CBus) -> Sht3xDriver:
    driver = Sht3xDriver(Sht3xOptions(), bus=bus, sleep=lambda _s: None)
    driver.open()
    return driver


def test_single_shot_read() -> None:
    chip = Sht3xChip(temperature_c=21.3, humidity_pct=38.2)
    values = opened(FakeI2CBus({0x44: chip})).read().values
    assert values == {"temperature_c": pytest.approx(21.3, abs=0.003), "humidity_pct": pytest.approx(38.2, abs=0.002)}
    assert chip.commands == [MEASURE_HIGH]


def test_a_corrupted_frame_is_a_comm_error_and_the_next_read_recovers() -> None:
    chip = Sht3xChip()
    driver = opened(FakeI2CBus({0x44: chip}))
    chip.corrupt = True
    with pytest.raises(CommError, match="CRC mismatch"):
        driver.read()
    assert driver.read().values["temperature_c"] == pytest.approx(23.5, abs=0.003)


def test_a_chip_at_the_other_address_is_a_comm_error() -> None:
    with pytest.raises(CommError, match=r"0x44: .*Remote I/O error"):
        opened(FakeI2CBus({0x45: Sht3xChip()})).read()
