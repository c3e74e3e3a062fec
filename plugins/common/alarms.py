"""Limit alarms with hysteresis and on-delay, shared by every plugin that alarms on a value.

Pure state machines: feed (value, time) and get the transitions back; the plugin turns each
transition into an event. A value hovering at a limit does not chatter: an alarm raises only
after the value stays beyond the limit for ``on_delay_s``, and clears only after it comes back
past ``limit -/+ hysteresis`` for ``off_delay_s``.

Given the plugin's state store, an AlarmSet remembers which alarms are active across instance
restarts, pushes and agent restarts: a restarted instance neither raises an active alarm again
nor forgets to clear one (``high`` and ``high_high`` raised, restart, value back to normal: both
clear).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from edge_agent.plugins.contract import StateStore


class Direction(enum.StrEnum):
    HIGH = "high"  # alarm when value > limit
    LOW = "low"  # alarm when value < limit


class AlarmConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One limit on one feature (config: ``[[instances.options.alarms]]``)."""

    feature: str  # the value's key, e.g. "x.velocity_rms_mm_s" or "ch1"
    level: str = "high"  # the alarm's name: low_low, low, high, high_high, or any word
    limit: float
    direction: Direction = Direction.HIGH
    hysteresis: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    on_delay_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    off_delay_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    feature: str
    level: str
    active: bool
    value: float
    limit: float


class Alarm:
    """State machine for one AlarmConfig."""

    __slots__ = ("_pending_since", "active", "cfg")

    def __init__(self, cfg: AlarmConfig) -> None:
        self.cfg = cfg
        self.active = False
        self._pending_since: float | None = None

    def _beyond(self, value: float) -> bool:
        c = self.cfg
        return value > c.limit if c.direction is Direction.HIGH else value < c.limit

    def _cleared(self, value: float) -> bool:
        c = self.cfg
        if c.direction is Direction.HIGH:
            return value <= c.limit - c.hysteresis
        return value >= c.limit + c.hysteresis

    def update(self, value: float, now_s: float) -> AlarmTransition | None:
        """Feed one value; return a transition when the alarm raises or clears."""
        if value is None or not math.isfinite(value):
            return None  # a bad value neither raises nor clears; quality covers it
        wants_change = self._cleared(value) if self.active else self._beyond(value)
        if not wants_change:
            self._pending_since = None
            return None
        if self._pending_since is None:
            self._pending_since = now_s
        delay = self.cfg.off_delay_s if self.active else self.cfg.on_delay_s
        if now_s - self._pending_since < delay:
            return None
        self.active = not self.active
        self._pending_since = None
        return AlarmTransition(self.cfg.feature, self.cfg.level, self.active, value, self.cfg.limit)


MEMORY_KEY = "alarms_active"  # the state store key (ns = the instance) of the active alarms


class AlarmSet:
    """All alarms of one plugin instance, looked up by feature key; with a store, active ones persist."""

    def __init__(self, configs: Iterable[AlarmConfig], store: StateStore | None = None, instance: str = "") -> None:
        self.alarms = [Alarm(c) for c in configs]
        self.store, self.instance = store, instance
        saved = store.load(instance, MEMORY_KEY) if store is not None else None
        if isinstance(saved, list):
            for alarm in self.alarms:
                alarm.active = f"{alarm.cfg.feature}:{alarm.cfg.level}" in saved

    def features(self) -> frozenset[str]:
        """The feature keys the alarms watch."""
        return frozenset(a.cfg.feature for a in self.alarms)

    def update(self, values: Mapping[str, Any], now_s: float) -> list[AlarmTransition]:
        """Feed a flat map of feature values; return every transition, in config order."""
        out: list[AlarmTransition] = []
        for alarm in self.alarms:
            v = values.get(alarm.cfg.feature)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                t = alarm.update(float(v), now_s)
                if t is not None:
                    out.append(t)
        if out and self.store is not None:
            self.store.save(self.instance, MEMORY_KEY, self.active())
        return out

    def active(self) -> list[str]:
        """Names ``feature:level`` of the alarms now active."""
        return [f"{a.cfg.feature}:{a.cfg.level}" for a in self.alarms if a.active]
