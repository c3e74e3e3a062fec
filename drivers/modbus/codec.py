"""Register <-> engineering value conversion for every tag type and byte/word order.

Orders, for a 32-bit value whose bytes are A (most significant) B C D:

==========  ==========  ===========  ===================
name        byte_order  word_order   registers on the wire
==========  ==========  ===========  ===================
ABCD        big         big          [AB] [CD]
CDAB        big         little       [CD] [AB]
BADC        little      big          [BA] [DC]
DCBA        little      little       [DC] [BA]
==========  ==========  ===========  ===================

Decoding puts the registers back in big-endian order (reverse the registers for a little word
order, swap the two bytes of each register for a little byte order) and unpacks big-endian.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

from edge_agent.drivers.contract import Scalar
from edge_agent.drivers.modbus.tags import INT_RANGE, STRUCT_CODE, DataType, Order, Tag

Decoder = Callable[[bytes, int], Scalar]  # (block bytes, register offset) -> value


def registers_to_bytes(regs: Sequence[int]) -> bytes:
    """Registers as transmitted (each big-endian on the wire)."""
    return struct.pack(f">{len(regs)}H", *regs)


def _permutation(n_regs: int, byte_order: Order, word_order: Order) -> list[int] | None:
    """Byte indices that rebuild the big-endian value from the wire bytes; None = identity."""
    words = list(range(n_regs))
    if word_order is Order.LITTLE:
        words.reverse()
    pairs = [(2 * w + 1, 2 * w) if byte_order is Order.LITTLE else (2 * w, 2 * w + 1) for w in words]
    perm = [i for pair in pairs for i in pair]
    return None if perm == list(range(2 * n_regs)) else perm


def _scaled(tag: Tag, raw: Callable[[bytes, int], float]) -> Decoder:
    """Wrap a raw decoder with scale and offset (kept exact and integer when they are 1 and 0)."""
    if tag.scale == 1.0 and tag.offset == 0.0:
        return raw
    scale, offset = tag.scale, tag.offset
    return lambda buf, off: raw(buf, off) * scale + offset


def _numeric(tag: Tag) -> Decoder:
    n = tag.count
    unpack = struct.Struct(">" + STRUCT_CODE[tag.type]).unpack_from
    perm = _permutation(n, tag.byte_order, tag.word_order)
    if perm is None:
        return _scaled(tag, lambda buf, off: unpack(buf, 2 * off)[0])

    def raw(buf: bytes, off: int) -> float:
        seg = buf[2 * off : 2 * off + 2 * n]
        return unpack(bytes([seg[i] for i in perm]))[0]  # type: ignore[no-any-return,unused-ignore]

    return _scaled(tag, raw)


def _bit(tag: Tag) -> Decoder:
    shift = (tag.bit or 0) + (8 if tag.byte_order is Order.LITTLE else 0)
    shift = shift - 16 if shift >= 16 else shift

    def raw(buf: bytes, off: int) -> bool:
        return bool((buf[2 * off] << 8 | buf[2 * off + 1]) >> shift & 1)

    return raw


def _string(tag: Tag) -> Decoder:
    n = tag.count
    perm = _permutation(n, tag.byte_order, tag.word_order)

    def raw(buf: bytes, off: int) -> str:
        seg = buf[2 * off : 2 * off + 2 * n]
        if perm is not None:
            seg = bytes([seg[i] for i in perm])
        return seg.split(b"\x00", 1)[0].decode("latin-1").rstrip()

    return raw


def decoder(tag: Tag) -> Decoder:
    """Build the decoder of one register tag (computed once at start)."""
    if tag.type is DataType.BIT:
        return _bit(tag)
    if tag.type is DataType.STRING:
        return _string(tag)
    return _numeric(tag)


def plain_code(tag: Tag) -> str | None:
    """The struct code of a numeric tag whose registers need no reordering (None for bits, strings
    and swapped orders): the tags of one request with such codes unpack in one call."""
    code = STRUCT_CODE.get(tag.type)  # none for bits, bools and strings
    if code is None or _permutation(tag.count, tag.byte_order, tag.word_order) is not None:
        return None
    return code


def decode_registers(tag: Tag, regs: Sequence[int]) -> Scalar:
    """Decode one tag from exactly its own registers (convenience for tests and tools)."""
    return decoder(tag)(registers_to_bytes(regs), 0)


def _raw_number(tag: Tag, value: float) -> float | int:
    """Engineering value -> raw number of the tag's type; ValueError if it does not fit."""
    exact = isinstance(value, int) and tag.scale == 1.0 and tag.offset == 0.0
    raw = value if exact else (value - tag.offset) / tag.scale  # big integers stay exact
    if tag.type in (DataType.FLOAT32, DataType.FLOAT64):
        if tag.type is DataType.FLOAT32 and math.isfinite(raw) and abs(raw) > 3.4028234e38:
            raise ValueError(f"{tag.name}: {value} does not fit a float32")
        return raw
    if not math.isfinite(raw):
        raise ValueError(f"{tag.name}: {value} is not a finite number")
    rounded = round(raw)
    lo, hi = INT_RANGE[tag.type]
    if not lo <= rounded <= hi:
        raise ValueError(f"{tag.name}: {value} is outside what a {tag.type} can hold ({lo}..{hi} raw)")
    return rounded


def encode_value(tag: Tag, value: Scalar) -> list[int]:
    """Engineering value -> registers on the wire (the inverse of ``decoder``)."""
    if tag.type is DataType.STRING:
        data = str(value).encode("latin-1").ljust(2 * tag.count, b"\x00")
        if len(data) > 2 * tag.count:
            raise ValueError(f"{tag.name}: text longer than {2 * tag.count} characters")
    else:
        if tag.type in (DataType.BOOL, DataType.BIT):
            return [int(bool(value))]
        number = value if isinstance(value, int) else float(value)
        data = struct.pack(">" + STRUCT_CODE[tag.type], _raw_number(tag, number))
    perm = _permutation(tag.count, tag.byte_order, tag.word_order)
    if perm is not None:  # the permutation is its own inverse for these orders
        data = bytes([data[perm.index(i)] for i in range(len(data))])
    return list(struct.unpack(f">{tag.count}H", data))
