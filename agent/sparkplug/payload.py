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


class QualityCode(enum.IntEnum):
    """The only values of a metric's ``Quality`` property (Int32; Sparkplug 3.0 6.4.9.1, Quality
    Codes: tck-id-payloads-propertyset-quality-value-type and -value-value)."""

    BAD = 0
    GOOD = 192
    STALE = 500


QUALITY_KEY = "Quality"  # the one property key the specification defines
REASON_KEY = "qualityReason"  # ours (a custom PropertySet key, 6.4.8): our quality code, e.g. "open_circuit"
REASON_MAX_CHARS = 64  # a plugin's quality string is not checked against the list: bound what we forward

# Our quality codes (docs/messages.md) -> Sparkplug. Sparkplug has no "uncertain" level: GOOD
# would tell every host the value can be trusted (alarms, historians and "use only good values"
# logic take it), which we do not claim; STALE says "not updated", which is not what uncertain
# means. So anything not good and not stale is BAD; the value itself still travels (not is_null)
# and REASON_KEY says why (docs/sparkplug.md, quality).
SPARKPLUG_QUALITY: dict[str, QualityCode] = {
    "good": QualityCode.GOOD,
    "stale": QualityCode.STALE,  # a held value, not updated
    # everything else, including codes this table does not know: BAD
}
GOOD = int(QualityCode.GOOD)


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


def quality_code(q: str | None) -> QualityCode:
    """Our quality code (None: good) -> the Sparkplug ``Quality`` value (0, 192 or 500)."""
    return QualityCode.GOOD if q is None else SPARKPLUG_QUALITY.get(q, QualityCode.BAD)


def quality_properties(q: str | None, *, birth: bool) -> dict[str, tuple[DataType, Any]]:
    """The ``Quality`` property (Int32, 0/192/500) and, beside it, our reason (String): with every
    quality that is not good, and as "good" in a DATA that clears one (a host keeping the last
    property value must not keep an old reason); a birth of a good metric needs none."""
    props: dict[str, tuple[DataType, Any]] = {QUALITY_KEY: (DataType.INT32, quality_code(q))}
    if q is not None or not birth:
        props[REASON_KEY] = (DataType.STRING, _reason(q))
    return props


def _reason(q: str | None) -> str:
    """Our code as a property string: bounded, valid UTF-8 whatever a plugin put in it."""
    text = "good" if q is None else str(q)
    return text.encode("utf-8", "replace").decode("utf-8")[:REASON_MAX_CHARS]


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
