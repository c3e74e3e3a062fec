"""Sparkplug B payloads: data types, metric values, quality codes, and decoding for tools.

Encoding goes through the official schema (sparkplug_b.proto compiled for ``protobuf``); this
module only maps our values and declared types onto it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from typing import Any

from edge_agent.agent.sparkplug import sparkplug_b_pb2 as pb

Payload = pb.Payload
Metric = pb.Payload.Metric
NAMESPACE = "spBv1.0"


class DataType(enum.IntEnum):
    """Sparkplug B data types (the ``datatype`` field; Sparkplug 3.0 section 6.4.16)."""

    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14


# Our declared dtypes (ValueSpec.dtype) -> Sparkplug data types.
FROM_DTYPE = {
    "float32": DataType.FLOAT,
    "float64": DataType.DOUBLE,
    "int": DataType.INT64,
    "bool": DataType.BOOLEAN,
    "str": DataType.STRING,
}
_32_BIT = {DataType.INT8, DataType.INT16, DataType.INT32, DataType.UINT8, DataType.UINT16, DataType.UINT32}
_64_BIT = {DataType.INT64, DataType.UINT64, DataType.DATETIME}

# Our quality codes -> OPC DA quality (what Ignition's MQTT Engine reads from the "Quality"
# property: 192 good, 64 uncertain, 0-28 bad with a sub-status).
OPC_QUALITY = {
    "good": 192,
    "uncertain": 64,
    "stale": 68,  # uncertain, last usable value
    "out_of_range": 84,  # uncertain, engineering units exceeded
    "implausible": 84,
    "bad": 0,
    "illegal_address": 4,  # bad, configuration error
    "device_busy": 8,  # bad, not connected (the device cannot answer now)
    "device_error": 12,  # bad, device failure
    "open_circuit": 16,  # bad, sensor failure
    "short_circuit": 16,
    "stuck": 16,
    "overrun": 20,  # bad, last known value
    "timeout": 24,  # bad, communication failure
    "comm_error": 24,
}
GOOD = 192


def guess_type(value: Any) -> DataType:
    """Data type for a value that no declaration covers (lossless: floats as Double)."""
    if isinstance(value, bool):
        return DataType.BOOLEAN
    if isinstance(value, int):
        return DataType.UINT64 if value >= 2**63 else DataType.INT64
    if isinstance(value, str):
        return DataType.STRING
    return DataType.DOUBLE


def set_value(m: Any, datatype: DataType, value: Any) -> None:
    """Put ``value`` into the value field its data type uses; None, and a value that does not fit
    its type (what no declaration checked: a string where a number was learned), become is_null,
    so one odd value never stops a birth or a whole message."""
    try:
        _set_value(m, datatype, value)
    except (TypeError, ValueError, OverflowError):
        m.is_null = True


def _set_value(m: Any, datatype: DataType, value: Any) -> None:
    if value is None or (isinstance(value, float) and math.isnan(value) and datatype not in (9, 10)):
        m.is_null = True
    elif datatype in _32_BIT:
        m.int_value = int(value) & 0xFFFFFFFF  # signed types as two's complement (3.0, 6.4.17)
    elif datatype in _64_BIT:
        m.long_value = int(value) & 0xFFFFFFFFFFFFFFFF
    elif datatype is DataType.FLOAT:
        m.float_value = float(value)
    elif datatype is DataType.DOUBLE:
        m.double_value = float(value)
    elif datatype is DataType.BOOLEAN:
        m.boolean_value = bool(value)
    else:
        m.string_value = str(value)


def get_value(m: Any, datatype: int | None) -> Any:
    """The value of a decoded metric (signed types sign-extended), None when null or absent."""
    if m.is_null:
        return None
    which = m.WhichOneof("value")
    if which is None:
        return None
    value = getattr(m, which)
    if datatype in (DataType.INT8, DataType.INT16, DataType.INT32) and which == "int_value":
        bits = {1: 8, 2: 16, 3: 32}[int(datatype)]
        value = value - (1 << bits) if value >= 1 << (bits - 1) else value
    elif datatype == DataType.INT64 and which == "long_value" and value >= 1 << 63:
        value -= 1 << 64
    return value


def set_properties(m: Any, props: Mapping[str, tuple[DataType, Any]]) -> None:
    """Attach a PropertySet (``engUnit``, ``Quality``, ...) to a metric."""
    for key, (datatype, value) in props.items():
        m.properties.keys.append(key)
        pv = m.properties.values.add()
        pv.type = int(datatype)
        if datatype in _32_BIT:
            pv.int_value = int(value) & 0xFFFFFFFF
        elif datatype is DataType.BOOLEAN:
            pv.boolean_value = bool(value)
        else:
            pv.string_value = str(value)


def quality_code(q: str | None) -> int:
    return GOOD if q is None else OPC_QUALITY.get(q, 0)


def metric_name(key: str) -> str:
    """Our dotted key -> a Sparkplug metric path (Ignition makes each ``/`` a tag folder)."""
    return key.replace(".", "/")


def to_dict(payload: bytes, datatypes: Mapping[int, int] | None = None) -> dict[str, Any]:
    """Decode a Sparkplug payload into a JSON-ready dict (``edge-agent tail``)."""
    p = Payload()
    p.ParseFromString(payload)
    out: dict[str, Any] = {"timestamp": p.timestamp} if p.HasField("timestamp") else {}
    if p.HasField("seq"):
        out["seq"] = p.seq
    out["metrics"] = [_metric_dict(m, datatypes or {}) for m in p.metrics]
    return out


def _metric_dict(m: Any, datatypes: Mapping[int, int]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for field in ("name", "alias", "timestamp", "datatype", "is_historical", "is_transient", "is_null"):
        if m.HasField(field):
            d[field] = getattr(m, field)
    datatype = m.datatype if m.HasField("datatype") else datatypes.get(m.alias)
    d["value"] = get_value(m, datatype)
    if m.HasField("properties"):
        d["properties"] = {k: _prop(v) for k, v in zip(m.properties.keys, m.properties.values, strict=False)}
    return d


def _prop(v: Any) -> Any:
    which = v.WhichOneof("value")
    return None if which is None or v.is_null else getattr(v, which)


def names(payload: Any) -> Iterable[str]:
    return (m.name for m in payload.metrics)
