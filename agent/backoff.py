"""Jittered exponential backoff, shared by the MQTT session's reconnects and the instances' restarts."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff_delays(min_s: float, max_s: float) -> Iterator[float]:
    """Jittered exponential backoff ("full jitter" on the upper half): min, 2 min, ... max."""
    delay = min_s
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(delay * 2, max_s)
