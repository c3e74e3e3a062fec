"""State a plugin keeps across restarts: the ``store`` the runtime puts in ``ctx.agent``
(its interface, :class:`StateStore`, and the in-memory default live in plugins/contract.py).

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

from typing import Any

from edge_agent.plugins.contract import MemoryStore, PluginContext, StateStore


def state_store(ctx: PluginContext[Any, Any]) -> StateStore:
    """The runtime's store (``ctx.agent.store``), else a fresh MemoryStore (tests, the harness)."""
    store = ctx.agent.store
    return store if store is not None else MemoryStore()
