"""State a plugin keeps across restarts: the ``store`` the runtime puts in ``ctx.agent``.

A plugin never opens files itself. When it must not lose its figures on a restart (production
counts within a shift, maintenance counters), it saves plain data (maps, lists, numbers, strings)
under a key of its own and loads it back in ``start``::

    store = state_store(ctx)
    saved = store.load(ctx.instance, "shift")        # None the first time
    store.save(ctx.instance, "shift", {...})          # buffered; on disk within one flush interval

The agent's store (SQLite in the state dir) writes buffered values every ``flush_s`` seconds in one
transaction, so a SIGKILL loses at most one interval and an SD card sees a few writes a minute.
``record`` appends a permanent record (a maintenance done, a report) and is written at once.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from edge_agent.plugins.contract import PluginContext


class StateStore(Protocol):
    """Keyed plain-data storage that survives restarts, remote config pushes and upgrades."""

    def load(self, ns: str, key: str) -> Any:
        """The value saved under (ns, key), or None."""

    def save(self, ns: str, key: str, value: Any) -> None:
        """Remember a value; written within one flush interval."""

    def record(self, kind: str, ns: str, body: dict[str, Any]) -> int:
        """Append a permanent record now; return its id."""

    def records(self, kind: str, ns: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest records of a kind (optionally of one ns), newest first."""


class MemoryStore:
    """A StateStore in memory: the default when the runtime gives none (tests, the harness)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}
        self.saved: list[tuple[str, dict[str, Any]]] = []
        self._records: list[tuple[int, str, str, dict[str, Any]]] = []

    def load(self, ns: str, key: str) -> Any:
        return self.values.get((ns, key))

    def save(self, ns: str, key: str, value: Any) -> None:
        self.values[(ns, key)] = value

    def record(self, kind: str, ns: str, body: dict[str, Any]) -> int:
        rid = len(self._records) + 1
        self._records.append((rid, kind, ns, {"id": rid, "ts_ms": time.time_ns() // 1_000_000, **body}))
        return rid

    def records(self, kind: str, ns: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        out = [b for _, k, n, b in reversed(self._records) if k == kind and (ns is None or n == ns)]
        return out[:limit]


def state_store(ctx: PluginContext) -> StateStore:
    """The runtime's store (``ctx.agent.store``), else a fresh MemoryStore (tests, the harness)."""
    store = ctx.agent.store
    return store if store is not None else MemoryStore()
