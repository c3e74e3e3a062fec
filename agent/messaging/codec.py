"""The message codec: one MessagePack envelope for every topic, and its decoder.

``{"v": 1, "ts": <ms since epoch>, "seq": <per topic>, "d": {...}}`` plus an optional ``"q"``
(quality per value where not good). Values are lossless: ints stay ints; a float goes as an
IEEE-754 single (5 bytes) when its key is declared float32 (a sensor measurement, 7 significant
digits) or when the single holds it exactly, and as a double (9 bytes) otherwise, so a float64
tag, a 32/64-bit counter or a scaled integer arrives exactly as the agent computed it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Container, Mapping
from typing import Any

import msgpack
from edge_agent.agent.errors import CodecError

VERSION = 1
TQ_UNSYNCED = "unsynced"  # "tq" of a message stamped before the wall clock was synchronised


def _default(obj: Any) -> Any:
    """Pack numpy scalars and enums the way their Python equivalents pack."""
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    value = getattr(obj, "value", None)
    if value is not None:
        return value
    raise TypeError(f"cannot encode {type(obj).__name__}")


# 16 kB to start with (msgpack's default is 256 kB each): messages are ~1 kB, and a packer grows
# its buffer when a bigger one comes (a capture, a config state); 0.5 MB of RSS less.
_PACKER_BUF_B = 16 * 1024
_packer = msgpack.Packer(use_single_float=False, default=_default, buf_size=_PACKER_BUF_B)
_packer_single = msgpack.Packer(use_single_float=True, default=_default, buf_size=_PACKER_BUF_B)
_F32 = struct.Struct(">Bf")
_F64 = struct.Struct(">Bd")
_AS_F32 = struct.Struct(">f")
NOTHING: frozenset[str] = frozenset()


class _EveryKey:
    """``narrow`` holding every key: each float of the message is declared float32."""

    def __contains__(self, key: object) -> bool:
        return True


ALL_FLOATS: Container[str] = _EveryKey()  # every float a single: ``d`` packed by msgpack in one C call


def fits_float32(x: float) -> bool:
    """True when an IEEE-754 single holds ``x`` exactly (so narrowing it loses nothing)."""
    try:
        return _AS_F32.unpack(_AS_F32.pack(x))[0] == x or x != x
    except OverflowError:
        return False


def _float(x: float, narrow: bool) -> bytes:
    if narrow or fits_float32(x):
        try:
            return _F32.pack(0xCA, x)
        except OverflowError:  # declared float32 but beyond its range: keep it whole
            pass
    return _F64.pack(0xCB, x)


_PLAIN: frozenset[type] = frozenset({int, str, bool, type(None), bytes})  # packed as they are


def _walk(obj: Any, path: str, narrow: Container[str], out: list[bytes]) -> None:
    """Append the MessagePack of ``obj``; ``path`` is its dotted key (for the declared dtype)."""
    t = type(obj)  # exact types first: every value of every message passes here
    if t is float:
        out.append(_float(obj, path in narrow))
    elif t in _PLAIN:
        out.append(_packer.pack(obj))
    elif t is dict or isinstance(obj, Mapping):
        out.append(_packer.pack_map_header(len(obj)))
        for k, v in obj.items():
            out.append(_packer.pack(k))
            _walk(v, f"{path}.{k}" if path else str(k), narrow, out)
    elif isinstance(obj, float):
        out.append(_float(obj, path in narrow))
    elif isinstance(obj, (list, tuple)):
        out.append(_packer.pack_array_header(len(obj)))
        for v in obj:
            _walk(v, path, narrow, out)
    elif t.__module__ == "numpy" and getattr(obj, "ndim", None) == 0:
        _walk(obj.item(), path, narrow, out)  # a numpy scalar: its float32 stays exact
    else:
        out.append(_packer.pack(obj))


def _pack_values(d: Any, narrow: Container[str], out: list[bytes]) -> None:
    """``d`` as MessagePack; when every float is declared float32 msgpack packs it all (the same
    bytes as the walk, ~20x faster), else the walk decides float by float."""
    if narrow is ALL_FLOATS:
        try:
            out.append(_packer_single.pack(d))
            return
        except (TypeError, ValueError, OverflowError):
            pass  # a value msgpack cannot take as it is (a Mapping that is not a dict): the walk can
    _walk(d, "", narrow, out)


def encode(
    d: Mapping[str, Any],
    *,
    ts_ms: int,
    seq: int,
    quality: Mapping[str, str] | None = None,
    narrow: Container[str] = NOTHING,
    single_float: bool = False,
    tq: str | None = None,
) -> bytes:
    """Encode one envelope; ``quality`` is omitted when empty, ``tq`` (time quality) when None.

    ``narrow``: dotted keys declared float32 (sent as singles). ``single_float`` = every float a
    single, the old lossy form (tests comparing sizes only)."""
    env: dict[str, Any] = {"v": VERSION, "ts": ts_ms, "seq": seq, "d": d}
    if quality:
        env["q"] = quality
    if tq is not None:
        env["tq"] = tq
    if single_float:
        return _packer_single.pack(env)
    out: list[bytes] = [_packer.pack_map_header(len(env))]
    for k, v in env.items():
        out.append(_packer.pack(k))
        if k == "d":
            _pack_values(v, narrow, out)
        else:
            out.append(_packer.pack(v))
    return b"".join(out)


def decode(payload: bytes) -> dict[str, Any]:
    """Decode and check one envelope; raise CodecError saying what is wrong."""
    try:
        env = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise CodecError(f"not MessagePack: {exc}") from exc
    if not isinstance(env, dict):
        raise CodecError(f"envelope must be a map, got {type(env).__name__}")
    missing = [k for k in ("v", "ts", "seq", "d") if k not in env]
    if missing:
        raise CodecError(f"envelope lacks {', '.join(missing)}")
    if env["v"] != VERSION:
        raise CodecError(f"unsupported envelope version {env['v']!r}")
    return env


def to_jsonable(obj: Any, *, non_finite: bool = False) -> Any:
    """Make a decoded payload printable as JSON (bytes -> a size summary); NaN and infinities
    become null, or stay themselves with ``non_finite`` (``json.dumps`` then prints ``NaN``,
    ``Infinity``, ``-Infinity``: what came, distinct from null; Python's json reads them back)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, non_finite=non_finite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, non_finite=non_finite) for v in obj]
    if isinstance(obj, bytes):
        return {"bytes": len(obj)}
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return obj if non_finite else None
        return short_float(obj)
    return obj


def short_float(x: float) -> float:
    """The shortest float that reads back as ``x``: a float32 that came as a single prints as
    1.84 (not 1.8400000333786011); a double prints with all the digits it needs."""
    if fits_float32(x):
        for digits in range(1, 10):
            y = float(f"{x:.{digits}g}")
            if _AS_F32.unpack(_AS_F32.pack(y))[0] == x:
                return y
    return x
