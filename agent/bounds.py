"""Bounds for what arrives from the network: numbers, echoed fields, whole decoded documents.

Everything a push, a desired document, a command or a Sparkplug message carries is checked here
where it enters, so nothing out of range is ever stored, echoed or republished. Why these ranges:
an integer beyond 2^53 is not exact in a JSON consumer (dashboards, the panel), one beyond int64
cannot even be encoded in MessagePack, and NaN or infinities compare false with every limit.
"""

from __future__ import annotations

import math
from typing import Any

MAX_SAFE_INT = 2**53 - 1  # versions, ids, timestamps: exact in every JSON and MessagePack consumer
MAX_ECHO_CHARS = 128  # an echoed correlation id (ping id, push id) never grows an answer further
MAX_ERROR_CHARS = 300  # one error line of an answer or of the retained config/state
MAX_DEPTH = 32  # nested maps and lists in a document (an instance table needs ~5)
MAX_NODES = 200_000  # values in one document (a 256 kB push holds far fewer)
INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1  # what MessagePack can encode


def is_int(v: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def int_in(v: Any, lo: int, hi: int) -> bool:
    """``v`` is an int (not a bool) with lo <= v <= hi."""
    return is_int(v) and lo <= v <= hi


def short(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text)} characters)"


def short_repr(v: Any, limit: int = 64) -> str:
    """A repr for an error message that cannot grow the answer (a 10 MB name stays 64 chars)."""
    if isinstance(v, str | bytes) and len(v) > limit:
        v = v[:limit]
        return f"{v!r}... ({limit}+ characters)"
    return short(repr(v), limit + 30)


def echo_id(v: Any) -> str | int | None:
    """A correlation id as it may be echoed: a bounded int, or a string cut to MAX_ECHO_CHARS."""
    if int_in(v, -MAX_SAFE_INT, MAX_SAFE_INT):
        return int(v)
    if isinstance(v, str):
        return v[:MAX_ECHO_CHARS]
    return None


def value_errors(doc: Any, where: str = "(document)") -> list[str]:
    """Every value of a decoded document that cannot be stored and re-encoded: integers beyond
    what MessagePack holds, NaN and infinities, nesting deeper than MAX_DEPTH (first 10 paths)."""
    errors: list[str] = []
    stack: list[tuple[Any, str, int]] = [(doc, where, 0)]
    seen = 0
    while stack and len(errors) < 10:
        v, path, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            errors.append(f"{where}: more than {MAX_NODES} values")
            break
        if depth > MAX_DEPTH:
            errors.append(f"{short(path, 120)}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(v, dict):
            stack.extend((item, f"{path}.{short(str(k), 40)}", depth + 1) for k, item in v.items())
        elif isinstance(v, list | tuple):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(v))
        elif is_int(v) and not INT64_MIN <= v <= UINT64_MAX:
            errors.append(f"{short(path, 120)}: integer out of range ({short(str(v), 40)})")
        elif isinstance(v, float) and not math.isfinite(v):
            errors.append(f"{short(path, 120)}: {v} is not a finite number")
    return errors
