"""Emulated SPI and I2C buses and a register-file chip: a driver's ``backend = "sim"`` and its
tests run the driver's register code against them, with no hardware (the test kit,
:mod:`edge_agent.drivers.testing`, re-exports them).

* :class:`RegisterChip`: a chip as a register file. Override ``read_register``/``write_register``
  (or ``i2c_write``/``i2c_read`` for command-based chips such as the SHT3x) to add behaviour.
* :class:`FakeSpiDev`: ``spidev.SpiDev``-like (``xfer2``, ``xfer``, ``mode``, ``max_speed_hz``), one chip.
* :class:`FakeI2CBus`: ``smbus2.SMBus``-like (``read_byte_data``, ``read_i2c_block_data``,
  ``i2c_rdwr``...) plus the :class:`edge_agent.drivers.buses.i2c.I2cBus` interface, with chips at
  addresses; a missing address answers ``OSError(121)`` like the kernel (no ACK).

Every transaction steps the bus's :class:`FaultPlan` first (none by default: tests script it).
"""

from __future__ import annotations

import copy
import errno
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def _eio() -> BaseException:
    return OSError(errno.EIO, "Input/output error (injected)")


@dataclass
class FaultPlan:
    """Which calls fail, with what, and how slow every call is. Calls are counted from 1 from the
    device's open (``FakeSpiDev.open``; a ``FakeI2CBus`` is open from its creation, as an SMBus is).
    ``error``: an exception (a fresh copy is raised each time) or a factory making one."""

    fail_calls: set[int] = field(default_factory=set)
    fail_from: int | None = None  # every call from this one on fails (an unplugged sensor)
    error: BaseException | Callable[[], BaseException] = _eio
    delay_s: float = 0.0  # each call takes this long (a slow device)
    hang: bool = False  # calls block until release() (a device that never answers)
    calls: int = 0
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    def step(self) -> None:
        """Count one call and apply the plan to it (sleep, hang, raise)."""
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.hang:
            self._released.wait()
        if self.calls in self.fail_calls or (self.fail_from is not None and self.calls >= self.fail_from):
            raise self.make_error()

    def make_error(self) -> BaseException:
        """The exception to raise now: a copy of ``error`` (no traceback carried over) or ``error()``."""
        if isinstance(self.error, BaseException):
            return copy.copy(self.error).with_traceback(None)
        return self.error()

    def release(self) -> None:
        """Let hung calls return (call it in the test's clean-up)."""
        self.hang = False
        self._released.set()

    def clear(self) -> None:
        """No more faults: the device is healthy again."""
        self.fail_calls = set()
        self.fail_from = None
        self.delay_s = 0.0
        self.release()


class RegisterChip:
    """A chip as a register file. SPI framing: address byte first, ``write_bit`` set means write,
    reads and writes auto-increment (the MAX31856/MAX31865 convention). I2C framing: a write sets
    the register pointer (first byte) and writes the rest; a read returns registers from it."""

    write_bit = 0x80

    def __init__(self, size: int = 256, init: Mapping[int, int] | None = None) -> None:
        self.regs = bytearray(size)
        for addr, value in (init or {}).items():
            self.regs[addr] = value & 0xFF
        self.writes: list[tuple[int, int]] = []  # (address, value) log for tests
        self.pointer = 0
        self.closed = False

    # -- behaviour: override these
    def read_register(self, addr: int) -> int:
        """The value a read of ``addr`` returns."""
        return self.regs[addr]

    def write_register(self, addr: int, value: int) -> None:
        """Store a written value (logged in ``writes``)."""
        self.writes.append((addr, value))
        self.regs[addr] = value & 0xFF

    # -- SPI
    def xfer(self, data: Sequence[int]) -> list[int]:
        """One SPI transaction with chip select held low; as many bytes back as sent."""
        if not data:
            return []
        addr = data[0] & ~self.write_bit & 0xFF
        out = [0]
        for i, byte in enumerate(data[1:]):
            a = (addr + i) % len(self.regs)
            if data[0] & self.write_bit:
                self.write_register(a, byte)
                out.append(0)
            else:
                out.append(self.read_register(a))
        return out

    # -- I2C
    def i2c_write(self, data: bytes) -> None:
        """One I2C write transaction (the bytes after the address)."""
        if not data:
            return
        self.pointer = data[0]
        for i, byte in enumerate(data[1:]):
            self.write_register((self.pointer + i) % len(self.regs), byte)

    def i2c_read(self, n: int) -> bytes:
        """One I2C read transaction of ``n`` bytes from the register pointer."""
        return bytes(self.read_register((self.pointer + i) % len(self.regs)) for i in range(n))

    def close(self) -> None:
        self.closed = True


class FakeSpiDev:
    """``spidev.SpiDev``-like port in front of one chip (anything with ``xfer(list) -> list``)."""

    def __init__(self, chip: Any, *, faults: FaultPlan | None = None) -> None:
        self.chip = chip
        self.faults = faults or FaultPlan()
        self.mode = 0
        self.max_speed_hz = 500_000
        self.transfers = 0
        self.closed = False

    def open(self, bus: int, device: int) -> None:
        self.closed = False
        self.faults.calls = self.transfers = 0  # counted from open(), as the fault plan says

    def xfer2(self, data: Sequence[int]) -> list[int]:
        """One transaction (chip select low for all of it)."""
        if self.closed:
            raise OSError(errno.EBADF, "SPI device is closed")
        self.faults.step()
        self.transfers += 1
        return list(self.chip.xfer(list(data)))

    xfer = xfer2

    def close(self) -> None:
        self.closed = True


class I2cMsg:
    """``smbus2.i2c_msg``-like: ``I2cMsg.write(addr, data)``, ``I2cMsg.read(addr, n)``; iterate for the bytes."""

    def __init__(self, addr: int, data: bytes, *, read: bool) -> None:
        self.addr = addr
        self.buf = bytearray(data)
        self.is_read = read

    @classmethod
    def write(cls, addr: int, data: Iterable[int]) -> I2cMsg:
        return cls(addr, bytes(data), read=False)

    @classmethod
    def read(cls, addr: int, n: int) -> I2cMsg:
        return cls(addr, bytes(n), read=True)

    def __iter__(self) -> Iterator[int]:
        return iter(self.buf)

    def __len__(self) -> int:
        return len(self.buf)

    def __bytes__(self) -> bytes:
        return bytes(self.buf)


class FakeI2CBus:
    """An I2C bus with chips at addresses: ``FakeI2CBus({0x44: MyChip()})``."""

    def __init__(self, devices: Mapping[int, Any] | None = None, *, faults: FaultPlan | None = None) -> None:
        self.devices: dict[int, Any] = dict(devices or {})
        self.faults = faults or FaultPlan()
        self.transactions = 0
        self.closed = False

    def _device(self, addr: int) -> Any:
        if self.closed:
            raise OSError(errno.EBADF, "I2C bus is closed")
        self.faults.step()
        self.transactions += 1
        dev = self.devices.get(addr)
        if dev is None:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")  # no ACK at this address
        return dev

    # -- the edge_agent.drivers.buses.i2c.I2cBus interface
    def write(self, address: int, data: bytes) -> None:
        """One write transaction."""
        self._device(address).i2c_write(bytes(data))

    def read(self, address: int, n: int) -> bytes:
        """One read transaction."""
        return bytes(self._device(address).i2c_read(n))

    def write_read(self, address: int, data: bytes, n: int) -> bytes:
        """A write then a read with a repeated start (a register read)."""
        dev = self._device(address)
        dev.i2c_write(bytes(data))
        return bytes(dev.i2c_read(n))

    # -- the smbus2.SMBus calls drivers use most
    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        return self.write_read(i2c_addr, bytes([register]), 1)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self.write(i2c_addr, bytes([register, value & 0xFF]))

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        return list(self.write_read(i2c_addr, bytes([register]), length))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        self.write(i2c_addr, bytes([register, *data]))

    def read_word_data(self, i2c_addr: int, register: int) -> int:
        lo, hi = self.write_read(i2c_addr, bytes([register]), 2)
        return lo | hi << 8  # SMBus words are little-endian

    def i2c_rdwr(self, *msgs: Any) -> None:
        """Combined transactions; read messages are filled in place."""
        for m in msgs:
            if getattr(m, "is_read", False):
                m.buf[:] = self.read(m.addr, len(m.buf))
            else:
                self.write(m.addr, bytes(m))

    def close(self) -> None:
        self.closed = True
