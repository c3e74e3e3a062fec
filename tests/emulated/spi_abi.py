"""The same numbers as spi_abi.c, from edge_agent's spidev code (run on the target's Python)."""

import ctypes
import struct
import sys

from edge_agent.drivers.adxl345.bus import SPI_IOC_TRANSFER, pack_transfers, spi_ioc_message

# Field offsets of the struct format "=QQIIHBBBBBB": tx_buf, rx_buf, len, speed_hz, delay_usecs,
# cs_change (after bits_per_word), word_delay_usecs.
offsets = [struct.calcsize("=" + SPI_IOC_TRANSFER.format[1 : 1 + i]) for i in (0, 1, 2, 3, 4, 6, 9)]
print(f"size {SPI_IOC_TRANSFER.size}")
print("offsets " + " ".join(map(str, offsets)))
print(f"message1 {spi_ioc_message(1)}")
print(f"message13 {spi_ioc_message(13)}")
print(f"pointer {ctypes.sizeof(ctypes.c_void_p)}")
# A pointer above 2**31 (32-bit ARM user space can have them) must survive the u64 field.
buf = pack_transfers(0xBFFF_0000, 0xBFFF_1000, [2, 7], 5)
tx, rx, length, _, delay, _, cs, *_ = SPI_IOC_TRANSFER.unpack_from(buf, 0)
assert (tx, rx, length, delay, cs) == (0xBFFF_0000, 0xBFFF_1000, 2, 5, 1), (tx, rx, length, delay, cs)
assert sys.byteorder == "little"
