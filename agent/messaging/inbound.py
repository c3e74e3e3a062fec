"""The inbound gate: what arrives on the agent's subscriptions reaches a handler only within that
subscription's rate and concurrency; the rest is shed unread, counted and reported.

Why: every message the agent reads costs loop time, and what a handler answers costs outbound
window slots; a flood (10,000 msg/s on ``config/set`` in the security review) must not stall the
data path. The topic patterns (``config/set``, ``cmd/+``, NCMD...) are the keys, never the topics,
so a flood of new topic names adds no state. See docs/security.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger("agent.mqtt")

Handler = Callable[[str, bytes], Awaitable[None] | None]
ShedReport = Callable[[dict[str, int], dict[str, int]], None]  # (since the last report, total)
SHED_REPORT_INTERVAL_S = 10.0  # inbound_shed events: the first at once, then at most this often


class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved."""

    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate_per_s, self.burst = rate_per_s, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self) -> bool:
        """True when one may pass now."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate_per_s)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def wait_s(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self.tokens) / self.rate_per_s)


class InboundGate:
    """Dispatches inbound messages to their subscription's handler, within its limits."""

    def __init__(
        self,
        subscriptions: dict[str, Handler],
        *,
        rate_per_s: float,
        burst: int,
        max_handlers: int,
        on_shed: ShedReport | None,
        counts: dict[str, int] | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self.max_handlers = max_handlers
        self.on_shed = on_shed
        self.shed: dict[str, int] = {} if counts is None else counts  # dropped per subscription, since start
        self._buckets = {p: TokenBucket(rate_per_s, burst) for p in subscriptions}
        self._running = dict.fromkeys(subscriptions, 0)
        self._handlers: dict[asyncio.Task[Any], str] = {}  # running handler -> its subscription
        self._reported: dict[str, int] = {}
        self._reported_at = -1e18
        self._report_pending = False

    def deliver(self, topic: str, payload: bytes) -> None:
        """Run the handler of the first matching subscription, or shed the message. Never raises."""
        for pattern, handler in self.subscriptions.items():
            if mqtt.topic_matches_sub(pattern, topic):
                if self._running[pattern] >= self.max_handlers or not self._buckets[pattern].take():
                    self._count_shed(pattern)
                    return
                try:
                    result = handler(topic, payload)
                except Exception:  # a handler's bug must not reach paho (it would drop the connection)
                    log.exception("handler of %s failed", pattern)
                    return
                if asyncio.iscoroutine(result):
                    task = asyncio.get_running_loop().create_task(result, name=f"mqtt-handler:{pattern}")
                    self._handlers[task] = pattern
                    self._running[pattern] += 1
                    task.add_done_callback(self._done)
                return

    def _done(self, task: asyncio.Task[Any]) -> None:
        pattern = self._handlers.pop(task, None)
        if pattern is not None:
            self._running[pattern] -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("inbound handler failed", exc_info=task.exception())

    def _count_shed(self, pattern: str) -> None:
        self.shed[pattern] = self.shed.get(pattern, 0) + 1
        if self.on_shed is not None and not self._report_pending:
            self._report_pending = True
            wait = max(0.0, self._reported_at + SHED_REPORT_INTERVAL_S - time.monotonic())
            asyncio.get_running_loop().call_later(wait, self._report)

    def _report(self) -> None:
        self._report_pending = False
        self._reported_at = time.monotonic()
        since = {k: v - self._reported.get(k, 0) for k, v in self.shed.items()}
        self._reported = dict(self.shed)
        if self.on_shed is not None and any(since.values()):
            self.on_shed({k: v for k, v in since.items() if v}, dict(self.shed))

    def running(self) -> list[asyncio.Task[Any]]:
        """The handlers running now (cancelled at close)."""
        return list(self._handlers)
