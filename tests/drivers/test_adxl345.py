"""ADXL345 driver against the emulated chip (register file + FIFO + SPI/I2C transaction ports)."""

from __future__ import annotations

import ctypes
import time
from typing import Any

import msgspec
import numpy as np
import pytest
from edge_agent.drivers.adxl345 import SPEC, Adxl345Driver, Adxl345Options
from edge_agent.drivers.adxl345.bus import SPI_IOC_TRANSFER, I2cBus, SpiBus, SpidevPort, spi_ioc_message
from edge_agent.drivers.adxl345.emulator import Adxl345Emulator
from edge_agent.drivers.adxl345.options import check_options
from edge_agent.drivers.adxl345.registers import Reg, rate_hz_of
from edge_agent.drivers.contract import Capability, check_driver_spec
from edge_agent.drivers.errors import CommError, DeviceIdMismatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ramp_source() -> Any:
    """Deterministic samples: x counts up by 1 LSB per sample, y = -x, z = 1 g."""
    state = {"k": 0}

    def source(n: int, _rate: float) -> Any:
        k = state["k"] + np.arange(n)
        state["k"] += n
        x = ((k % 1000) - 500) * 0.0039
        return np.stack([x, -x, np.full(n, 1.0)], axis=1)

    return source


def make(bus_kind: str = "spi", **opts: Any) -> tuple[Adxl345Driver, Adxl345Emulator, Clock]:
    clock = Clock()
    chip = Adxl345Emulator(ramp_source(), clock=clock)
    bus = SpiBus(chip.spi) if bus_kind == "spi" else I2cBus(chip.i2c, 0x53)
    o = msgspec.convert(opts, Adxl345Options)
    return Adxl345Driver(o, bus=bus, clock=clock, background=False), chip, clock


def run(drv: Adxl345Driver, clock: Clock, seconds: float, step_s: float = 0.005) -> None:
    for _ in range(round(seconds / step_s)):
        clock.now += step_s
        drv.drain()


def test_spec_is_valid() -> None:
    spec = check_driver_spec(SPEC, "edge_agent.drivers.adxl345:SPEC")
    assert spec.provides == frozenset({Capability.WAVEFORM})


@pytest.mark.parametrize("bus_kind", ["spi", "i2c"])
def test_init_sequence(bus_kind: str) -> None:
    drv, chip, _ = make(bus_kind, range_g=4, rate_hz=1600)
    drv.open()
    assert chip.regs[Reg.BW_RATE] == 0x0E and rate_hz_of(chip.regs[Reg.BW_RATE]) == 1600
    assert chip.regs[Reg.DATA_FORMAT] == 0x08 | 0x01  # FULL_RES, +-4 g
    assert chip.regs[Reg.FIFO_CTL] == 0x80 | 16  # stream mode, watermark 16
    assert chip.regs[Reg.POWER_CTL] == 0x08  # measuring
    drv.close()
    assert chip.regs[Reg.POWER_CTL] == 0x00
    drv.close()  # twice is fine


def test_rate_code_3200() -> None:
    drv, chip, _ = make()
    drv.open()
    assert chip.regs[Reg.BW_RATE] == 0x0F


def test_wrong_device_id_is_a_clear_error() -> None:
    drv, chip, _ = make()
    chip.regs[Reg.DEVID] = 0x00
    with pytest.raises(DeviceIdMismatch, match="DEVID is 0x00, expected 0xE5"):
        drv.open()


@pytest.mark.parametrize("bus_kind", ["spi", "i2c"])
def test_fifo_drain_loses_nothing_at_3200_hz(bus_kind: str) -> None:
    drv, chip, clock = make(bus_kind)
    drv.open()
    run(drv, clock, 2.0)
    wf = drv.read()
    assert wf.lost_samples == 0 and chip.lost_samples == 0
    assert len(wf.samples) == pytest.approx(6400, abs=33)
    x = wf.raw[:, 0].astype(int)
    assert np.all(np.diff(x) % 1000 == 1)  # contiguous ramp: no sample lost or repeated
    assert np.array_equal(wf.raw[:, 1], -wf.raw[:, 0])
    assert np.all(wf.raw[:, 2] == 256)  # 1 g / 3.9 mg
    assert wf.samples[0, 2] == pytest.approx(0.9984, abs=1e-4) and wf.scale == 0.0039
    assert wf.rate_hz == 3200.0 and wf.axes == ("x", "y", "z") and wf.unit == "g"


def test_read_returns_blocks_since_last_read() -> None:
    drv, _, clock = make()
    drv.open()
    run(drv, clock, 1.0)
    first = drv.read()
    run(drv, clock, 0.5)
    second = drv.read()
    assert abs(len(first.samples) - 3200) <= 33 and abs(len(second.samples) - 1600) <= 33
    joined = np.concatenate([first.raw[:, 0], second.raw[:, 0]]).astype(int)
    assert np.all(np.diff(joined) % 1000 == 1)


def test_overrun_is_reported_with_lost_samples() -> None:
    drv, chip, clock = make()
    drv.open()
    run(drv, clock, 0.5)
    clock.now += 0.05  # a 50 ms stall: 160 samples arrive, the FIFO keeps 32
    drv.drain()
    run(drv, clock, 0.5)
    wf = drv.read()
    assert chip.lost_samples == 128
    assert wf.lost_samples == pytest.approx(128, abs=2) and drv.overruns == 1
    assert drv.read().lost_samples == 0


def test_ring_buffer_overflow_counts_as_lost() -> None:
    drv, _, clock = make(buffer_s=0.5)
    drv.open()
    run(drv, clock, 1.0)
    wf = drv.read()
    assert len(wf.samples) <= 1600 and len(wf.samples) + wf.lost_samples == pytest.approx(3200, abs=33)


def test_spi_framing_read_and_multibyte_bits() -> None:
    chip = Adxl345Emulator(ramp_source(), clock=Clock())
    assert chip.spi.xfer2([0x80 | Reg.DEVID, 0]) == [0, 0xE5]
    assert chip.spi.xfer2([Reg.DEVID, 0]) == [0, 0]  # a write (bit 7 clear) returns nothing useful
    assert chip.regs[Reg.DEVID] == 0xE5  # and DEVID is read-only
    chip.spi.xfer2([Reg.BW_RATE, 0x0D])
    assert chip.spi.xfer2([0x80 | Reg.BW_RATE, 0, 0]) == [0, 0x0D, 0x0D]  # no MB bit: no increment
    assert SpiBus(chip.spi).read(Reg.BW_RATE, 2) == bytes([0x0D, 0x00])  # MB bit: BW_RATE, POWER_CTL


def test_i2c_wrong_address_is_comm_error() -> None:
    chip = Adxl345Emulator(ramp_source(), clock=Clock())
    with pytest.raises(CommError, match="0x1D"):
        I2cBus(chip.i2c, 0x1D).read(Reg.DEVID, 1)


def test_sim_backend_with_background_thread() -> None:
    o = msgspec.convert({"backend": "sim", "bus": "i2c", "sim": {"fault": "outer"}}, Adxl345Options)
    drv = SPEC.factory(o)
    drv.open()
    try:
        time.sleep(0.3)
        wf = drv.read()
    finally:
        drv.close()
    assert len(wf.samples) > 300 and wf.samples.shape[1] == 3
    assert float(np.std(wf.samples[:, 0])) > 0.01


def test_options_check() -> None:
    def errs(**kw: Any) -> list[str]:
        return check_options(msgspec.convert(kw, Adxl345Options))

    assert errs() == []
    assert errs(rate_hz=3000)[0].startswith("rate_hz:")
    assert errs(range_g=3)[0].startswith("range_g:")
    assert errs(bus="i2c", device="/dev/i2c-1")[0].startswith("rate_hz: 3200 Hz needs SPI")
    assert errs(bus="i2c", backend="sim") == []
    assert errs(drain_interval_s=0.01)[0].startswith("drain_interval_s:")
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"rate": 3200}, Adxl345Options)


class FlakyBus:
    """Wraps a bus; raises CommError on the reads listed in ``fail``."""

    def __init__(self, bus: Any, fail: set[int]) -> None:
        self.bus, self.fail, self.n = bus, fail, 0

    def read(self, reg: int, n: int) -> bytes:
        self.n += 1
        if self.n in self.fail:
            raise CommError("spi: glitch")
        return self.bus.read(reg, n)

    def write(self, reg: int, value: int) -> None:
        self.bus.write(reg, value)

    def close(self) -> None:
        self.bus.close()


def test_bus_error_in_the_drain_thread_is_reported_then_recovers() -> None:
    chip = Adxl345Emulator(ramp_source())
    o = msgspec.convert({}, Adxl345Options)
    drv = Adxl345Driver(o, bus=FlakyBus(SpiBus(chip.spi), {3}))
    drv.open()
    try:
        time.sleep(0.05)
        with pytest.raises(CommError):
            drv.read()
        time.sleep(0.3)
        after = drv.read()
        assert len(after.samples) > 100 and after.lost_samples >= 1  # the gap is flagged
    finally:
        drv.close()


# -- FIFO bursts: one message of CS-separated segments per drain --------------------------------------
class PerEntryPort:
    """Only ``xfer2``: forces SpiBus back to one transaction per FIFO entry."""

    def __init__(self, port: Any) -> None:
        self.port = port

    def xfer2(self, data: list[int]) -> list[int]:
        return self.port.xfer2(data)

    def close(self) -> None:
        self.port.close()


def drained(port_of: Any, seconds: float = 1.0) -> tuple[Any, int, int]:
    """Raw counts, reported lost samples and chip-side lost samples of a run with a 50 ms stall."""
    clock = Clock()
    chip = Adxl345Emulator(ramp_source(), clock=clock)
    drv = Adxl345Driver(msgspec.convert({}, Adxl345Options), bus=SpiBus(port_of(chip)), clock=clock, background=False)
    drv.open()
    run(drv, clock, seconds / 2, step_s=0.004)
    clock.now += 0.05
    run(drv, clock, seconds / 2, step_s=0.004)
    wf = drv.read()
    return wf.raw, wf.lost_samples, chip.lost_samples


def test_burst_and_per_entry_drains_read_the_same() -> None:
    burst = drained(lambda chip: chip.spi)
    per_entry = drained(lambda chip: PerEntryPort(chip.spi))
    assert np.array_equal(burst[0], per_entry[0]) and burst[1:] == per_entry[1:]
    assert burst[2] > 100 and burst[1] == pytest.approx(burst[2], abs=2)  # the stall was seen and counted


class CountingPort:
    """Counts the port calls (system calls on hardware) on their way to the emulated chip."""

    def __init__(self, port: Any) -> None:
        self.port, self.calls = port, 0

    def xfer2(self, data: list[int]) -> list[int]:
        self.calls += 1
        return self.port.xfer2(data)

    def xfer_segments(self, segments: list[bytes], gap_us: int) -> list[bytes]:
        self.calls += 1
        return self.port.xfer_segments(segments, gap_us)

    def close(self) -> None:
        self.port.close()


def test_spi_drain_is_two_messages() -> None:
    clock = Clock()
    port = CountingPort(Adxl345Emulator(ramp_source(), clock=clock).spi)
    drv = Adxl345Driver(msgspec.convert({}, Adxl345Options), bus=SpiBus(port), clock=clock, background=False)
    drv.open()
    before = port.calls
    run(drv, clock, 1.0, step_s=0.004)
    assert port.calls - before == 2 * 250  # FIFO_STATUS, then all entries in one message
    assert len(drv.read().samples) == pytest.approx(3200, abs=33)


def test_emulated_segments_match_single_transfers() -> None:
    burst = [0x80 | 0x40 | Reg.DATAX0] + [0] * 6
    segments = [bytes([0x80 | Reg.DEVID, 0])] + [bytes(burst)] * 3 + [bytes([0x80 | Reg.FIFO_STATUS, 0])]
    chips = []
    for _ in range(2):
        clock = Clock()
        chip = Adxl345Emulator(ramp_source(), clock=clock)
        SpiBus(chip.spi).write(Reg.FIFO_CTL, 0x80)
        SpiBus(chip.spi).write(Reg.POWER_CTL, 0x08)
        clock.now += 0.001  # 3 samples at 3200 Hz
        chips.append(chip)
    one_by_one = [bytes(chips[0].spi.xfer2(list(seg))) for seg in segments]
    assert chips[1].spi.xfer_segments(segments, 5) == one_by_one
    assert one_by_one[0] == bytes([0, 0xE5]) and one_by_one[-1] == bytes([0, 0])  # 3 entries read, none left
    only_bursts = [bytes(burst)] * 4  # more bursts than entries: the rest are plain transactions
    clock.now += 0.001
    assert [bytes(chips[0].spi.xfer2(list(seg))) for seg in only_bursts] == chips[1].spi.xfer_segments(only_bursts, 5)


def test_spi_ioc_message_numbers() -> None:
    assert spi_ioc_message(1) == 0x40206B00  # SPI_IOC_MESSAGE(1) as compiled from linux/spi/spidev.h
    assert spi_ioc_message(13) == 0x41A06B00  # 13 x 32 bytes = 0x1A0
    assert SPI_IOC_TRANSFER.size == 32
    with pytest.raises(ValueError):
        spi_ioc_message(512)  # 16 kB: does not fit the 14-bit size field


class FakeKernel:
    """Stands in for the spidev driver behind ``ioctl(fd, SPI_IOC_MESSAGE(n), transfers)``: runs each
    transfer against the emulated chip, reading tx and writing rx at the addresses in the array."""

    def __init__(self, chip: Adxl345Emulator) -> None:
        self.chip = chip
        self.calls: list[tuple[int, int, list[tuple[int, ...]]]] = []

    def ioctl(self, fd: int, request: int, msg: bytearray) -> int:
        transfers = list(SPI_IOC_TRANSFER.iter_unpack(bytes(msg)))
        self.calls.append((fd, request, transfers))
        for tx_buf, rx_buf, length, *_ in transfers:
            rx = bytes(self.chip.spi.xfer2(list(ctypes.string_at(tx_buf, length))))
            ctypes.memmove(rx_buf, rx, length)
        return 0


class FakeSpiDev:
    """The py-spidev calls SpidevPort makes."""

    def __init__(self, chip: Adxl345Emulator) -> None:
        self.chip = chip

    def xfer2(self, data: list[int]) -> list[int]:
        return self.chip.spi.xfer2(data)

    def fileno(self) -> int:
        return 7

    def close(self) -> None:
        pass


def test_spidev_port_sends_the_fifo_as_one_ioctl() -> None:
    clock = Clock()
    chip = Adxl345Emulator(ramp_source(), clock=clock)
    kernel = FakeKernel(chip)
    bus = SpiBus(SpidevPort(FakeSpiDev(chip), ioctl=kernel.ioctl))
    drv = Adxl345Driver(msgspec.convert({}, Adxl345Options), bus=bus, clock=clock, background=False)
    drv.open()
    run(drv, clock, 0.5, step_s=0.004)
    wf = drv.read()
    assert wf.lost_samples == 0 and len(wf.samples) == pytest.approx(1600, abs=33)
    assert np.all(np.diff(wf.raw[:, 0].astype(int)) % 1000 == 1)
    fd, request, transfers = kernel.calls[-1]
    assert fd == 7 and request == spi_ioc_message(len(transfers)) and len(transfers) in (12, 13, 14)
    tx0, rx0 = transfers[0][:2]
    for i, (tx, rx, length, speed_hz, delay_us, bits, cs_change, tx_nbits, rx_nbits, word_delay, pad) in enumerate(
        transfers
    ):
        assert (tx - tx0, rx - rx0, length) == (7 * i, 7 * i, 7)  # consecutive segments of one buffer
        assert (speed_hz, bits, tx_nbits, rx_nbits, word_delay, pad) == (0, 0, 0, 0, 0, 0)  # device settings
        assert delay_us == 5 and cs_change == (0 if i == len(transfers) - 1 else 1)  # CS high between entries


def test_failed_ioctl_is_comm_error() -> None:
    def broken(fd: int, request: int, msg: bytearray) -> int:
        raise OSError(5, "Input/output error")

    chip = Adxl345Emulator(ramp_source(), clock=Clock())
    with pytest.raises(CommError, match="FIFO read of 3 entries"):
        SpiBus(SpidevPort(FakeSpiDev(chip), ioctl=broken)).read_fifo(3)


# -- the emulated FIFO's register behaviour --------------------------------------------------------
def started_chip(fifo_ctl: int = 0x80 | 16) -> tuple[Adxl345Emulator, SpiBus, Clock]:
    clock = Clock()
    chip = Adxl345Emulator(ramp_source(), clock=clock)
    bus = SpiBus(chip.spi)
    for reg, value in ((Reg.BW_RATE, 0x0F), (Reg.DATA_FORMAT, 0x0B), (Reg.FIFO_CTL, fifo_ctl), (Reg.POWER_CTL, 0x08)):
        bus.write(reg, value)
    return chip, bus, clock


def x_counts(raw: bytes) -> list[int]:
    return np.frombuffer(raw, dtype="<i2")[0::3].tolist()


def test_emulated_fifo_keeps_the_newest_32_and_flags_overrun() -> None:
    chip, bus, clock = started_chip()
    clock.now += 10.5 / 3200  # 10 samples
    assert bus.read(Reg.FIFO_STATUS, 1)[0] == 10 and bus.read(Reg.INT_SOURCE, 1)[0] == 0x80  # data, < watermark
    clock.now += 40 / 3200  # 50 in all: the oldest 18 are overwritten
    assert bus.read(Reg.FIFO_STATUS, 1)[0] == 32 and chip.lost_samples == 18
    assert bus.read(Reg.INT_SOURCE, 1)[0] == 0x83  # data ready, watermark, overrun
    assert x_counts(bus.read(Reg.DATAX0, 6)) == [18 - 500]  # the oldest kept sample, popped
    assert bus.read(Reg.INT_SOURCE, 1)[0] & 0x01 == 0  # reading data cleared OVERRUN
    assert x_counts(bus.read_fifo(31)) == list(range(19 - 500, 50 - 500))
    assert bus.read(Reg.FIFO_STATUS, 1)[0] == 0 and chip.fifo_entries == 0
    clock.now += 3 / 3200
    assert x_counts(bus.read_fifo(3)) == list(range(50 - 500, 53 - 500)) and chip.lost_samples == 18


def test_emulated_fifo_bypass_holds_only_the_latest_sample() -> None:
    chip, bus, clock = started_chip(fifo_ctl=0x00)
    clock.now += 5.5 / 3200
    assert bus.read(Reg.FIFO_STATUS, 1)[0] == 1 and x_counts(bus.read(Reg.DATAX0, 6)) == [4 - 500]
    assert chip.lost_samples == 0 and not chip.overrun
