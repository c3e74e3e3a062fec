"""What reaches the broker: a subscriber on ``#`` and the collector that checks and sizes every message
(seq gaps, qualities, latency, MessagePack against JSON of the same content)."""

from __future__ import annotations

import base64
import json
import math
import queue
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgpack

Record = tuple[float, str, bytes, int, bool]  # arrival (epoch s), topic, payload, qos, retained


def subscribe(url: str) -> tuple[Any, queue.SimpleQueue[Record]]:
    """A paho client on '#' (QoS 2, so every message arrives with its publish QoS), TCP_NODELAY."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    ep = urlsplit(url)
    q: queue.SimpleQueue[Record] = queue.SimpleQueue()
    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-plant")
    c.on_socket_open = lambda cl, ud, sock: _nodelay(sock)
    c.on_connect = lambda cl, ud, flags, rc, props=None: cl.subscribe("#", qos=2)
    c.on_subscribe = lambda cl, ud, mid, rcs, props=None: subscribed.set()
    c.on_message = lambda cl, ud, m: q.put((time.time(), m.topic, bytes(m.payload), m.qos, bool(m.retain)))
    c.connect(ep.hostname or "127.0.0.1", ep.port or 1883, 30)
    c.loop_start()
    if not subscribed.wait(10):
        raise SystemExit(f"could not subscribe on {url}")
    return c, q


def _nodelay(sock: Any) -> None:
    """No Nagle: with delayed ACKs it would add 40-80 ms to the measured latency of small messages."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def decode_envelope(payload: bytes) -> dict[str, Any] | None:
    """The envelope of docs/messages.md decoded independently of the agent's codec (None if it is not one)."""
    try:
        env = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception:  # msgpack raises several unrelated types for bad input
        return None
    if not isinstance(env, dict) or any(k not in env for k in ("v", "ts", "seq", "d")) or env["v"] != 1:
        return None
    return env


def mqtt_publish_bytes(topic: str, payload: bytes, qos: int) -> int:
    """Size of the MQTT 3.1.1 PUBLISH packet: fixed header, topic, packet id (QoS > 0), payload."""
    rem = 2 + len(topic.encode()) + (2 if qos else 0) + len(payload)
    return 1 + max(1, math.ceil(rem.bit_length() / 7)) + rem


def _jsonable(obj: Any, digits: int | None) -> Any:
    """The decoded envelope as JSON can carry it: bytes base64, NaN null, floats as decoded (float32
    widened, as a gateway decoding registers prints them) or cut to ``digits`` significant digits."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, digits) for v in obj]
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else (obj if digits is None else float(f"{obj:.{digits}g}"))
    return obj


def json_bytes(env: dict[str, Any]) -> int:
    """The same content as ``json.dumps`` writes it (the yardstick of the issue)."""
    return len(json.dumps(_jsonable(env, None)).encode())


def json_compact_bytes(env: dict[str, Any]) -> int:
    """The same content as the tightest plain JSON: no spaces, floats to 7 significant digits."""
    return len(json.dumps(_jsonable(env, 7), separators=(",", ":")).encode())


def leaves(d: Any) -> int:
    """Number of values in a (nested) message body."""
    return sum(leaves(v) for v in d.values()) if isinstance(d, dict) else 1


@dataclass
class Flow:
    """Traffic of one plugin (or of the agent's own topics) inside the measured window."""

    msgs: int = 0
    wire: int = 0
    payload: int = 0
    json: int = 0
    json_compact: int = 0
    values: int = 0
    latency_ms: list[float] = field(default_factory=list)


@dataclass
class Collector:
    plugin_of: dict[str, str]
    window: tuple[float, float] = (math.inf, math.inf)
    flows: dict[str, Flow] = field(default_factory=lambda: defaultdict(Flow))
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    last_seq: dict[str, int] = field(default_factory=dict)
    gaps: Counter[str] = field(default_factory=Counter)
    dups: Counter[str] = field(default_factory=Counter)
    quality: Counter[str] = field(default_factory=Counter)
    quality_window: Counter[str] = field(default_factory=Counter)  # after warm-up
    data_window: Counter[str] = field(default_factory=Counter)  # data messages per instance after warm-up
    events: Counter[str] = field(default_factory=Counter)
    first_data_s: float | None = None
    first_data_instance: str = ""  # which instance published first
    online_s: float | None = None  # arrival of the agent's first "online" status (connected, birth sent)
    status: list[str] = field(default_factory=list)
    system: dict[str, Any] = field(default_factory=dict)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)  # data topic -> every value seen, latest
    total: int = 0
    undecodable: int = 0

    def add(self, rec: Record) -> None:
        t, topic, payload, qos, retained = rec
        parts = topic.split("/")
        kind = parts[2] if len(parts) > 2 else ""
        instance = parts[3] if kind in ("data", "event") and len(parts) > 3 else ""
        plugin = self.plugin_of.get(instance, "agent")
        self.total += 1
        env = decode_envelope(payload)
        if env is None:
            self.undecodable += 1
            return
        if kind == "data" and self.first_data_s is None:
            self.first_data_s, self.first_data_instance = t, instance
        if kind == "status" and self.online_s is None and env["d"].get("state") == "online":
            self.online_s = t
        if kind in ("data", "event") and not retained:
            self._seq(topic, int(env["seq"]))
        self._content(kind, plugin, instance, env)
        if self.window[0] <= t <= self.window[1]:
            self._count(t, topic, payload, qos, kind, plugin, env)

    def _seq(self, topic: str, seq: int) -> None:
        last = self.last_seq.get(topic)
        if last is not None and seq <= last:
            self.dups[topic] += 1
            return
        if last is not None and seq > last + 1:
            self.gaps[topic] += seq - last - 1
        self.last_seq[topic] = seq

    def full_json_b_per_s(self, plugin: str, interval_of: dict[str, float]) -> float:
        """JSON of every value every poll (no report by exception), as the peer gateways send."""
        total = 0.0
        for key, state in self.state.items():
            p, _, instance = key.partition("/")
            if p == plugin:
                env = {"v": 1, "ts": 1_700_000_000_000, "seq": 1000, "d": state}
                total += json_bytes(env) / interval_of.get(instance, 1.0)
        return total

    def _content(self, kind: str, plugin: str, instance: str, env: dict[str, Any]) -> None:
        d = env["d"]
        if kind == "data":
            _merge(self.state.setdefault(f"{plugin}/{instance}", {}), d)
            self.quality.update(str(v) for v in _flat_values(env.get("q", {})))
            if plugin == "system":
                self.system = d
        elif kind == "event":
            self.events[f"{d.get('kind')}/{d.get('severity')}"] += 1
        elif kind == "status":
            self.status.append(f"{d.get('state')}:{d.get('reason', '')}")

    def _count(
        self,
        t: float,
        topic: str,
        payload: bytes,
        qos: int,
        kind: str,
        plugin: str,
        env: dict[str, Any],
    ) -> None:
        f = self.flows[plugin]
        if kind == "data":
            self.quality_window.update(str(v) for v in _flat_values(env.get("q", {})))
            self.data_window[topic.rsplit("/", 1)[-1]] += 1
        f.msgs += 1
        f.wire += mqtt_publish_bytes(topic, payload, qos)
        f.payload += len(payload)
        f.json += json_bytes(env)
        f.json_compact += json_compact_bytes(env)
        if kind not in ("data", "event"):
            return
        latency = 1000.0 * t - int(env["ts"])
        if kind == "data":
            f.values += leaves(env["d"])
            f.latency_ms.append(latency)
        cls = "events" if kind == "event" else ("vibration windows" if plugin == "vibration" else "values")
        self.latency[cls].append(latency)


def drain(q: queue.SimpleQueue[Record], col: Collector) -> None:
    """Hand every message received so far to the collector."""
    while True:
        try:
            col.add(q.get_nowait())
        except queue.Empty:
            return


def _merge(into: dict[str, Any], d: dict[str, Any]) -> None:
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def _flat_values(d: Any) -> Iterator[Any]:
    if isinstance(d, dict):
        for v in d.values():
            yield from _flat_values(v)
    else:
        yield d
