"""The agent's own events (instance ``agent`` on ``{p}/{agent}/event/agent``): outbox drops,
spool and seq store faults, an unclean restart, inbound floods shed, the audit of change commands."""

from __future__ import annotations

import asyncio
from typing import Any

from edge_agent.agent.messaging.publisher import Publisher
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.plugins.contract import Severity


class AgentEvents:
    """Turns what the outbox, the seq store, the session and the commands report into agent events."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def at_start(self, seqs: SeqStore, quarantined: list[str]) -> None:
        """What start-up found: an unclean stop before, a seq file it cannot use, stored state files
        moved aside (``quarantined``: why, for each; docs/security.md)."""
        if not seqs.was_clean:
            self._event("unclean_restart", "the previous run did not stop cleanly", Severity.WARNING)
        if seqs.fault:
            self._event("seq_store_fault", seqs.fault, Severity.CRITICAL)
        for why in quarantined:
            self._event("state_quarantined", why, Severity.CRITICAL)
        seqs.on_fault = self.seq_store_fault

    def seq_store_fault(self, why: str) -> None:
        """seq.sqlite failed during the run: numbers go on in memory; after a crash they may repeat.
        Called from inside a seq reservation: the event is published on the next loop turn."""
        why = f"{why}; seq numbers are kept in memory for this run"
        asyncio.get_running_loop().call_soon(self._event, "seq_store_fault", why, Severity.CRITICAL)

    def spool_dropped(self, since: dict[str, int], total: dict[str, int]) -> None:
        n = sum(since.values())
        self.publisher.event(
            "agent",
            "spool_full",
            f"outbox full: dropped the {n} oldest message(s) (data {since['data']}, event {since['event']})",
            Severity.WARNING,
            {"dropped": since, "dropped_total": total},
        )

    def spool_fault(self, kind: str, why: str) -> None:
        self.publisher.event("agent", "spool_fault", why, Severity.CRITICAL, {"fault": str(kind)})

    def inbound_shed(self, since: dict[str, int], total: dict[str, int]) -> None:
        """Inbound messages dropped by the session's limits (a flood): say how many, where."""
        where = ", ".join(f"{k}: {v}" for k, v in since.items())
        self.publisher.event(
            "agent",
            "inbound_shed",
            f"inbound flood: dropped {sum(since.values())} message(s) ({where})",
            Severity.WARNING,
            {"dropped": since, "dropped_total": total},
        )

    def audit(self, kind: str, message: str, fields: dict[str, Any]) -> None:
        """A change command run or refused (agent/remote/commands.py)."""
        self.publisher.event("agent", kind, message, Severity.INFO, fields)

    def _event(self, kind: str, message: str, severity: Severity) -> None:
        self.publisher.event("agent", kind, message, severity, {})
