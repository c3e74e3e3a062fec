"""The message codec: one MessagePack envelope for every topic, and its decoder.

``{"v": 1, "ts": <ms since epoch>, "seq": <per topic>, "d": {...}}`` plus an optional ``"q"``
(quality per value where not good). Floats are packed as IEEE-754 single precision (7
significant digits, more than any sensor here resolves) to keep payloads small; ints stay ints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgpack
from edge_agent.agent.errors import CodecError

VERSION = 1


def _default(obj: Any) -> Any:
    """Pack numpy scalars and enums the way their Python equivalents pack."""
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    value = getattr(obj, "value", None)
    if value is not None:
        return value
    raise TypeError(f"cannot encode {type(obj).__name__}")


_packer_single = msgpack.Packer(use_single_float=True, default=_default)
_packer_double = msgpack.Packer(use_single_float=False, default=_default)


def encode(
    d: Mapping[str, Any],
    *,
    ts_ms: int,
    seq: int,
    quality: Mapping[str, str] | None = None,
    single_float: bool = True,
) -> bytes:
    """Encode one envelope; ``quality`` is omitted when empty."""
    env: dict[str, Any] = {"v": VERSION, "ts": ts_ms, "seq": seq, "d": d}
    if quality:
        env["q"] = quality
    packer = _packer_single if single_float else _packer_double
    return packer.pack(env)


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


def to_jsonable(obj: Any) -> Any:
    """Make a decoded payload printable as JSON (bytes -> hex summary, NaN -> null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return {"bytes": len(obj)}
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else float(f"{obj:.7g}")
    return obj
