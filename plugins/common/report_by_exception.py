"""Report by exception: publish a value only when it moved past its deadband, when its quality
changed, or when its heartbeat is due. Shared by every plugin that publishes scalar values.

A true analog deadband compares with the last *published* value (not the last read), so a slow
drift is reported once it has accumulated past the band.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Deadband:
    """``absolute`` in the value's unit, or ``percent`` of ``span``; 0 means any change."""

    absolute: float = 0.0
    percent: float = 0.0
    span: float = 0.0

    def width(self) -> float:
        return max(self.absolute, self.percent / 100.0 * self.span)


NO_DEADBAND = Deadband()


class ReportByException:
    """Filter for one instance's values; ``heartbeat_s`` = 0: every value at every poll (a
    heartbeat of 0 s is always due), None: no heartbeat (changes only)."""

    __slots__ = (
        "_bands",
        "_default",
        "_last",
        "_last_q",
        "_sent_at",
        "_snapshot_at",
        "_widths",
        "heartbeat_s",
        "snapshot",
    )

    def __init__(
        self,
        *,
        heartbeat_s: float | None = 60.0,
        default: Deadband = NO_DEADBAND,
        bands: Mapping[str, Deadband] | None = None,
        snapshot: bool = False,
    ) -> None:
        self.heartbeat_s = heartbeat_s
        # snapshot=True: one heartbeat timer for the instance; when due, every value is sent in
        # one message (consumers get a full state), instead of per-value timers drifting apart.
        self.snapshot = snapshot
        self._snapshot_at = -1e18
        self._default = default
        self._bands = dict(bands or {})
        self._widths: dict[str, float] = {}  # key -> its deadband's width (Deadband is frozen)
        self._last: dict[str, Any] = {}
        self._last_q: dict[str, str] = {}
        self._sent_at: dict[str, float] = {}

    def _width(self, key: str) -> float:
        width = self._widths.get(key)
        if width is None:
            width = self._widths[key] = self._bands.get(key, self._default).width()
        return width

    def _changed(self, key: str, value: Any) -> bool:
        if key not in self._last:
            return True
        old = self._last[key]
        if type(value) is not float or type(old) is not float:  # floats (the common case) skip these checks
            if isinstance(value, bool) or not isinstance(value, (int, float)) or isinstance(old, bool):
                return bool(value != old)
            if not isinstance(old, (int, float)):
                return True
        band = self._width(key)
        diff = abs(value - old)
        return diff > band if band > 0 else diff != 0 or value != value  # NaN always reported

    def filter(
        self, values: Mapping[str, Any], quality: Mapping[str, str], now_s: float
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Return the (values, quality) to publish now and remember them as published."""
        out: dict[str, Any] = {}
        out_q: dict[str, str] = {}
        hb = self.heartbeat_s
        all_due = self.snapshot and hb is not None and now_s - self._snapshot_at >= hb
        if all_due:
            self._snapshot_at = now_s
        per_key = not self.snapshot and hb is not None  # a heartbeat timer per value
        hb_s = hb if hb is not None else 0.0
        last, last_q, sent_at, widths = self._last, self._last_q, self._sent_at, self._widths
        for key, value in values.items():
            q = quality.get(key, "good")
            was = last_q.get(key)  # None: never published
            if was is None or q != was or all_due or (per_key and now_s - sent_at.get(key, -1e18) >= hb_s):
                due = True
            elif q != "good":
                due = False
            elif type(value) is float and type(last[key]) is float:  # _changed inlined: 500 tags a second
                band = widths.get(key)
                if band is None:
                    band = self._width(key)
                diff = abs(value - last[key])
                due = diff > band if band > 0 else diff != 0 or value != value
            else:
                due = self._changed(key, value)
            if due:
                out[key] = value
                if q != "good":
                    out_q[key] = q
                self._last[key] = value
                last_q[key] = q
                sent_at[key] = now_s
        return out, out_q

    def forget(self) -> None:
        """Drop the memory so that the next filter publishes everything (after a reconnect)."""
        self._last.clear()
        self._last_q.clear()
        self._sent_at.clear()
