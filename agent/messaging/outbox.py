"""The outbox: messages created by instances wait here until the broker acknowledges them.

``MemoryOutbox`` is bounded: when full it drops the oldest *data* message first and keeps
events and state longest; every drop is counted by class. The durable spool
(agent/messaging/spool.py) implements the same interface, so the MQTT session never knows which one it has.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Priority(enum.IntEnum):
    """Drop order when full: DATA first, then EVENT; STATE (status, config state) is never dropped."""

    DATA = 0
    EVENT = 1
    STATE = 2


_order = itertools.count()


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    priority: Priority
    seq: int
    order: int = field(default_factory=lambda: next(_order))
    spool_id: int | None = None


class Outbox(Protocol):
    """What the MQTT session needs from a queue of outgoing messages."""

    def put(self, msg: Message) -> None: ...

    async def get(self) -> Message: ...

    def ack(self, msg: Message) -> None: ...

    def requeue(self, msg: Message) -> None: ...

    def link(self, up: bool) -> None:
        """The session's connection to the broker came up (True) or went down (False)."""

    def depth(self) -> int: ...

    def dropped(self) -> dict[str, int]: ...

    async def close(self) -> None: ...


class MemoryOutbox:
    """Bounded in-memory outbox; ``get`` returns messages oldest-first across classes."""

    def __init__(
        self, max_messages: int, *, on_drop: Callable[[dict[str, int], dict[str, int]], None] | None = None
    ) -> None:
        self.max_messages = max_messages
        self.on_drop = on_drop  # called with (dropped since last report, total), at most every 10 s
        self._reported: dict[str, int] = {}
        self._reported_at = -1e18
        self._queues: dict[Priority, deque[Message]] = {p: deque() for p in Priority}
        self._size = 0
        self._unacked = 0
        self._dropped = {p.name.lower(): 0 for p in Priority}
        self._ready = asyncio.Event()

    def put(self, msg: Message) -> None:
        """Queue a message; drop the oldest lowest-class message first when full."""
        full = self._size + self._unacked >= self.max_messages
        if full and not self._make_room(msg.priority):
            self._dropped[msg.priority.name.lower()] += 1  # nothing less important to drop
        else:
            self._queues[msg.priority].append(msg)
            self._size += 1
            self._ready.set()
        if full:
            self._report_drops()

    def _report_drops(self) -> None:
        now = time.monotonic()
        if self.on_drop is None or now - self._reported_at < 10.0:
            return
        since = {k: v - self._reported.get(k, 0) for k, v in self._dropped.items()}
        self._reported, self._reported_at = dict(self._dropped), now
        if any(since.values()):
            self.on_drop(since, dict(self._dropped))

    def _make_room(self, incoming: Priority) -> bool:
        """Drop the oldest message of the lowest class not above ``incoming``; False if none."""
        if incoming is Priority.STATE:
            return True  # state is tiny and rare: it may exceed the bound
        for prio in (Priority.DATA, Priority.EVENT):
            q = self._queues[prio]
            if prio <= incoming and q:
                q.popleft()
                self._size -= 1
                self._dropped[prio.name.lower()] += 1
                return True
        return False

    async def get(self) -> Message:
        """Wait for and return the oldest queued message (by creation order)."""
        while self._size == 0:
            self._ready.clear()
            await self._ready.wait()
        heads = [q for q in self._queues.values() if q]
        q = min(heads, key=lambda d: d[0].order)
        self._size -= 1
        self._unacked += 1
        return q.popleft()

    def ack(self, msg: Message) -> None:
        """The broker has the message."""
        self._unacked = max(0, self._unacked - 1)

    def requeue(self, msg: Message) -> None:
        """The client could not take ``msg``: it is first again (never lost, never reordered)."""
        self._unacked = max(0, self._unacked - 1)
        self._queues[msg.priority].appendleft(msg)
        self._size += 1
        self._ready.set()

    def link(self, up: bool) -> None:
        """Nothing to do: the memory queue keeps no seq reservation."""

    def depth(self) -> int:
        return self._size + self._unacked

    def dropped(self) -> dict[str, int]:
        return dict(self._dropped)

    async def close(self) -> None:
        """Nothing durable to close."""
