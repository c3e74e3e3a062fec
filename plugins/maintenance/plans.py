"""Preventive maintenance math: counters per asset and plans that fall due on whichever comes
first of running hours, start/stop cycles, parts or calendar days. Pure, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

DAY_S = 86400.0


class Status(enum.StrEnum):
    OK = "ok"
    DUE = "due"
    OVERDUE = "overdue"


@dataclass
class Counters:
    """Lifetime counters of one asset."""

    running_s: float = 0.0
    cycles: int = 0  # starts (not running -> running)
    parts: int = 0
    running: bool | None = None

    def add(self, running: bool, seconds: float, parts: int) -> None:
        if running and self.running is False:
            self.cycles += 1
        if running:
            self.running_s += seconds
        self.parts += parts
        self.running = running

    def as_basis(self, now_s: float) -> dict[str, float]:
        return {
            "running_hours": self.running_s / 3600.0,
            "cycles": float(self.cycles),
            "parts": float(self.parts),
            "days": now_s / DAY_S,
        }


@dataclass
class PlanState:
    """Where a plan was last done (the counters then) and what was last told."""

    done_at: dict[str, float] = field(default_factory=dict)  # basis -> counter value when done
    status: Status = Status.OK
    due_since_s: float | None = None  # wall-clock s when it fell due

    def to_dict(self) -> dict[str, Any]:
        return {"done_at": dict(self.done_at), "status": str(self.status), "due_since_s": self.due_since_s}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlanState:
        return cls(
            {str(k): float(v) for k, v in dict(d.get("done_at") or {}).items()},
            Status(d.get("status", "ok")),
            d.get("due_since_s"),
        )


def progress(intervals: dict[str, float], basis_now: dict[str, float], done_at: dict[str, float]) -> dict[str, float]:
    """Per basis: the fraction of its interval used since the plan was last done."""
    return {b: (basis_now[b] - done_at.get(b, 0.0)) / every for b, every in intervals.items() if every > 0}


def judge(used: dict[str, float], grace: float) -> tuple[Status, str | None]:
    """(status, the basis that is furthest along): due at 100 %, overdue at 100 % + grace."""
    if not used:
        return Status.OK, None
    basis = max(used, key=lambda b: used[b])
    top = used[basis]
    status = Status.OVERDUE if top >= 1.0 + grace else Status.DUE if top >= 1.0 else Status.OK
    return status, basis
