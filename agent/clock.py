"""Wall-clock milliseconds since the epoch: the ``ts`` of every message, record and alarm the agent writes.

A module of its own, importing nothing, so that light parts (the alarm list, which the panel
process also loads) use the same helper as the publisher without importing it."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall-clock time in ms since the epoch (``time.time_ns() // 1_000_000``)."""
    return time.time_ns() // 1_000_000
