"""``edge-agent tail``: subscribe and print decoded messages as JSON lines."""

from __future__ import annotations

import json
import queue
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import msgpack
import paho.mqtt.client as mqtt
from edge_agent.agent.errors import CodecError
from edge_agent.agent.messaging import codec
from edge_agent.agent.messaging.mqtt_session import Endpoint, set_nodelay
from edge_agent.agent.ops.connection import ClientError, ClientSettings, Connection
from edge_agent.agent.ops.inventory import decode_document
from paho.mqtt.enums import CallbackAPIVersion

# Sparkplug DATA metrics carry only aliases: names and types come from the births seen.
_BIRTHS: dict[str, dict[int, tuple[str, int]]] = {}  # "group/node" -> alias -> (name, datatype)


def decode_sparkplug(topic: str, payload: bytes) -> dict[str, Any]:
    """A Sparkplug B message as JSON: STATE as sent, others decoded; DATA metrics named."""
    parts = topic.split("/")
    if len(parts) >= 3 and parts[1] == "STATE":
        return {"sparkplug": "STATE", "state": json.loads(payload)}
    from edge_agent.agent.sparkplug.payload import to_dict

    node = "/".join(parts[1:4:2])
    known = _BIRTHS.setdefault(node, {})
    rec = to_dict(payload, {a: t for a, (_, t) in known.items()})
    for m in rec["metrics"]:
        if "name" in m and "alias" in m and "datatype" in m:
            known[m["alias"]] = (m["name"], m["datatype"])
        elif "alias" in m and m["alias"] in known:
            m["name"] = known[m["alias"]][0]
    return {"sparkplug": parts[2], **codec.to_jsonable(rec, non_finite=True)}


def decode_line(topic: str, payload: bytes, retain: bool) -> dict[str, Any]:
    """One printable record: topic, retained flag and the decoded envelope (or the error)."""
    rec: dict[str, Any] = {"topic": topic}
    if retain:
        rec["retained"] = True
    if topic.startswith("spBv1.0/"):
        try:
            rec.update(decode_sparkplug(topic, payload))
        except Exception as exc:  # protobuf and json raise several unrelated types
            rec["error"] = f"not a Sparkplug B payload: {exc}"
            rec["bytes"] = len(payload)
        return rec
    try:
        rec.update(codec.to_jsonable(codec.decode(payload), non_finite=True))
    except CodecError as exc:
        doc = decode_document(payload)  # what ops sends has no envelope: config documents, commands
        if doc is not None or (doc := _plain_map(payload)) is not None:
            rec["doc"] = codec.to_jsonable(doc, non_finite=True)
        else:
            rec["error"] = str(exc)
            rec["bytes"] = len(payload)
    return rec


def _plain_map(payload: bytes) -> dict[str, Any] | None:
    """A MessagePack map without an envelope (a command request), or None."""
    try:
        d = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception:  # msgpack raises assorted types on foreign bytes
        return None
    return d if isinstance(d, dict) else None


def subscribe(url: str, topics: list[str], *, client_id: str = "") -> tuple[mqtt.Client, queue.Queue[Any]]:
    """Connect a plain paho client (network thread) delivering (topic, payload, retain) to a queue."""
    ep = Endpoint.parse(url)
    q: queue.Queue[Any] = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if ep.tls:
        c.tls_set()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        for t in topics:
            client.subscribe(t, qos=1)
        q.put(("$connected", b"", False))

    c.on_connect = on_connect
    c.on_message = lambda cl, ud, m: q.put((m.topic, m.payload, bool(m.retain)))
    c.on_socket_open = lambda cl, ud, sock: set_nodelay(sock)
    c.connect(ep.host, ep.port, 30)
    c.loop_start()
    return c, q


def tail(
    settings: ClientSettings,
    filters: list[str],
    *,
    count: int | None,
    seconds: float | None,
    out: TextIO = sys.stdout,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Print records until ``count`` messages or ``seconds`` elapsed (both optional); a broker
    that cannot be reached or refuses the login is a one-line error and exit code 2."""
    try:
        conn = Connection(settings, filters, name="edge-tail").__enter__()
    except ClientError as exc:
        print(f"edge-agent tail: {exc}", file=sys.stderr)
        return 2
    deadline = time.monotonic() + seconds if seconds else None
    n = 0
    try:
        while count is None or n < count:
            timeout = 3600.0 if deadline is None else deadline - time.monotonic()
            if timeout <= 0:
                break
            msg = conn.get(timeout)
            if msg is None:
                if deadline is None:
                    continue
                break
            rec = decode_line(*msg)
            n += 1
            if on_record:
                on_record(rec)
            else:
                print(json.dumps(rec, separators=(",", ":")), file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        conn.close()
    return 0
