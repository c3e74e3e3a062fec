"""Wall-clock milliseconds since the epoch: the ``ts`` of every message, record and alarm the agent writes.

A module of its own, importing nothing, so that light parts (the alarm list, which the panel
process also loads) use the same helper as the publisher without importing it."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall-clock time in ms since the epoch (``time.time_ns() // 1_000_000``)."""
    return time.time_ns() // 1_000_000


def span_text(seconds: float) -> str:
    """A span as people read it, ``3 d 0 h``, ``3 h 0 min``, ``61 s`` (the size of a clock step)."""
    seconds = round(seconds)
    if seconds >= 86400:
        return f"{int(seconds // 86400)} d {int(seconds % 86400 // 3600)} h"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{seconds:.0f} s"
