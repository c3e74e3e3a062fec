"""An instance's state, counters and the faults it can be in (agent/runtime/supervisor.py runs it)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from edge_agent.plugins.contract import InstanceStats


class State(enum.StrEnum):
    """An instance's state as ``config/state`` shows it."""

    STARTING = "starting"  # building and opening the driver, starting the plugin
    RUNNING = "running"  # polling; the last poll's values were all good
    DEGRADED = "degraded"  # polling, but some values were not good (their quality says why)
    HUNG = "hung"  # a driver call passed its deadline; no new call until it returns
    BACKOFF = "backoff"  # open() or a poll failed; waiting before the next try
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class StateInfo:
    """One instance's state, since when (ms since epoch) and why (a sentence, may be empty)."""

    state: State
    since_ms: int
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"state": str(self.state), "since": self.since_ms}
        if self.why:
            d["why"] = self.why
        return d


@dataclass
class InstanceCounters:
    """An instance's counters while it runs; ``as_stats`` gives the contract's InstanceStats."""

    polls: int = 0
    skipped_ticks: int = 0
    errors: int = 0
    restarts: int = 0
    hung: int = 0  # driver_hung episodes
    faults: int = 0  # sensor_fault episodes (open() failed)
    last_error: str = ""

    def as_stats(self, state: State) -> InstanceStats:
        """The counters with the state, as plugins see them (``AgentStats.instances``)."""
        return InstanceStats(
            polls=self.polls,
            skipped_ticks=self.skipped_ticks,
            errors=self.errors,
            restarts=self.restarts,
            hung=self.hung,
            faults=self.faults,
            last_error=self.last_error,
            state=str(state),
        )


def describe(exc: BaseException) -> str:
    """``RuntimeError: boom`` or the class name alone when the message is empty."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def nulls(keys: list[str]) -> dict[str, Any]:
    """A nested map with every dotted key set to None."""
    out: dict[str, Any] = {}
    for key in keys:
        *path, leaf = key.split(".")
        node = out
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = None
    return out


class OpenFailed(Exception):
    """open() of the driver failed (wraps the cause): a sensor fault, not a bug."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.cause = cause


class PollHung(Exception):
    """The plugin's own poll() (not a driver call) passed the poll deadline."""
