"""What reaches the broker during a soak, kept whole: every data and event seq number per topic
(order-independent, so a backlog delivered after an outage is checked like live traffic), every
event, the answers to commands and pushes, the status changes and the qualities."""

from __future__ import annotations

import queue
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.plant.subscriber import Record, decode_envelope


@dataclass(frozen=True)
class Event:
    t: float  # arrival (epoch s, real clock)
    ts_ms: int  # the agent's stamp (its wall clock, maybe stepped)
    instance: str
    kind: str
    severity: str
    msg: str


@dataclass(frozen=True)
class Arrival:
    seq: int
    t: float
    ts_ms: int


@dataclass
class Messages:
    arrivals: dict[str, list[Arrival]] = field(default_factory=lambda: defaultdict(list))  # data/event topics
    events: list[Event] = field(default_factory=list)
    answers: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)  # cmd and config results
    status: list[tuple[float, str]] = field(default_factory=list)
    quality: Counter[tuple[str, str]] = field(default_factory=Counter)  # (instance, code) -> values
    total: int = 0
    undecodable: int = 0
    first_data_s: float | None = None

    def add(self, rec: Record) -> None:
        t, topic, payload, _qos, retained = rec
        parts = topic.split("/")
        kind = parts[2] if len(parts) > 2 else ""
        self.total += 1
        env = decode_envelope(payload)
        if env is None:
            self.undecodable += int(kind in ("data", "event", "status"))
            return
        d = env["d"] if isinstance(env["d"], dict) else {}
        if kind in ("data", "event") and not retained:
            self.arrivals[topic].append(Arrival(int(env["seq"]), t, int(env["ts"])))
        if kind == "data":
            self.first_data_s = self.first_data_s or t
            self._quality(parts[3], env.get("q", {}))
        elif kind == "event":
            self.events.append(
                Event(
                    t, int(env["ts"]), parts[3], str(d.get("kind")), str(d.get("severity")), str(d.get("msg", ""))[:200]
                )
            )
        elif kind == "status" and not retained:
            self.status.append((t, f"{d.get('state')}:{d.get('reason', '')}"))
        elif topic.endswith("/result"):
            self.answers.append((t, "/".join(parts[2:]), d))

    def _quality(self, instance: str, q: Any) -> None:
        if isinstance(q, dict):
            for v in q.values():
                self._quality(instance, v)
        elif q is not None:
            self.quality[(instance, str(q))] += 1


def drain(q: queue.SimpleQueue[Record], msgs: Messages) -> None:
    """Hand every message received so far to ``msgs``."""
    while True:
        try:
            msgs.add(q.get_nowait())
        except queue.Empty:
            return
