"""ADXL345 register map and field values (datasheet Rev. G, table 19)."""

from __future__ import annotations

import enum

DEVID_VALUE = 0xE5
SCALE_G_PER_LSB = 0.0039  # full resolution, every range (datasheet typical 3.9 mg/LSB)
FIFO_DEPTH = 32
SPI_READ = 0x80
SPI_MULTI = 0x40
I2C_ADDRESSES = (0x53, 0x1D)  # ALT ADDRESS low / high


class Reg(enum.IntEnum):
    DEVID = 0x00
    BW_RATE = 0x2C
    POWER_CTL = 0x2D
    INT_SOURCE = 0x30
    DATA_FORMAT = 0x31
    DATAX0 = 0x32
    DATAZ1 = 0x37
    FIFO_CTL = 0x38
    FIFO_STATUS = 0x39


POWER_MEASURE = 0x08
FORMAT_FULL_RES = 0x08
INT_OVERRUN = 0x01
INT_WATERMARK = 0x02
INT_DATA_READY = 0x80
FIFO_MODE_BYPASS = 0x00
FIFO_MODE_STREAM = 0x80
FIFO_ENTRIES_MASK = 0x3F

# Output data rate (Hz) -> BW_RATE rate code (normal power).
RATE_CODES: dict[float, int] = {3200.0 / 2**k: 0x0F - k for k in range(10)}
RANGE_CODES: dict[int, int] = {2: 0, 4: 1, 8: 2, 16: 3}


def rate_hz_of(code: int) -> float:
    """Output data rate of a BW_RATE rate code."""
    return 3200.0 / 2 ** (0x0F - (code & 0x0F))
