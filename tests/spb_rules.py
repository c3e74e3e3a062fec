"""Sparkplug B test helpers: a recorder, Eclipse Tahu's JavaScript decoder, and the session rules."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
NPM_ROOT = ROOT / "build" / "npm" / "node_modules"
TAHU_JS = ROOT / "tests" / "agent" / "tahu_decode.js"
# value field each datatype uses (Sparkplug 3.0, 6.4.16/6.4.17)
VALUE_FIELD = {1: "intValue", 2: "intValue", 3: "intValue", 5: "intValue", 6: "intValue", 7: "intValue"}
VALUE_FIELD |= {4: "longValue", 8: "longValue", 13: "longValue", 9: "floatValue", 10: "doubleValue"}
VALUE_FIELD |= {11: "booleanValue", 12: "stringValue", 14: "stringValue"}
# PropertyValue types (6.4.8: the basic types, PropertySet 20, PropertySetList 21)
PROPERTY_TYPES = set(range(1, 15)) | {20, 21}
QUALITY_CODES = {0, 192, 500}  # 6.4.9.1 (tck-id-payloads-propertyset-quality-value-value)
# types of the property keys hosts know: Quality by the spec (Int32), the rest by the convention
# Tahu and Ignition's MQTT Engine read (engUnit, readOnly, ...); qualityReason is ours
KNOWN_PROPERTY_TYPES = {"Quality": {3}, "engUnit": {12}, "engLow": {9, 10}, "engHigh": {9, 10}}
KNOWN_PROPERTY_TYPES |= {"readOnly": {11}, "Documentation": {12}, "Tooltip": {12}, "qualityReason": {12}}


def tahu_available() -> bool:
    return shutil.which("node") is not None and (NPM_ROOT / "sparkplug-payload" / "package.json").exists()


@dataclass
class Msg:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    at: float


class Recorder:
    """A paho client recording every message under spBv1.0/# (and whatever else is asked)."""

    def __init__(self, url: str, topics: tuple[str, ...] = ("spBv1.0/#",)) -> None:
        host, port = url.split("//")[1].split(":")
        self.msgs: list[Msg] = []
        self._cv = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        ready = threading.Event()

        def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any = None) -> None:
            for t in topics:
                c.subscribe(t, qos=1)
            ready.set()

        def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
            with self._cv:
                self.msgs.append(Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain), time.monotonic()))
                self._cv.notify_all()

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.reconnect_delay_set(0.1, 1)  # back before the agent after a broker restart
        self.client.connect(host, int(port), 30)
        self.client.loop_start()
        assert ready.wait(10)
        time.sleep(0.1)

    def of(self, kind: str) -> list[Msg]:
        with self._cv:
            return [m for m in self.msgs if f"/{kind}/" in m.topic or m.topic.endswith(f"/{kind}")]

    def wait_for(self, pred: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = pred()
            if got:
                return got
            with self._cv:
                self._cv.wait(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def tahu_decode(msgs: list[Msg]) -> list[dict[str, Any]]:
    """Decode every Sparkplug payload (not STATE) with Tahu's codec in one node process."""
    lines = "".join(
        json.dumps({"topic": m.topic, "b64": base64.b64encode(m.payload).decode()}) + "\n"
        for m in msgs
        if m.topic.startswith("spBv1.0/") and "/STATE/" not in m.topic
    )
    out = subprocess.run(
        ["node", str(TAHU_JS), str(NPM_ROOT)], input=lines, capture_output=True, text=True, timeout=60, check=True
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def value_of(metric: dict[str, Any], datatype: int) -> Any:
    """A metric's value as Python reads it from Tahu's JSON (longs come as strings, exact)."""
    if metric.get("isNull"):
        return None
    field = VALUE_FIELD[datatype]
    if field not in metric:
        return None
    v = metric[field]
    if field == "longValue":
        v = int(v)
        return v - (1 << 64) if datatype == 4 and v >= 1 << 63 else v
    if field == "intValue" and datatype in (1, 2, 3):
        bits = {1: 8, 2: 16, 3: 32}[datatype]
        return v - (1 << bits) if v >= 1 << (bits - 1) else v
    return v


def violations(decoded: list[dict[str, Any]]) -> list[str]:
    """Session rules over one edge node's messages, in arrival order (Sparkplug 3.0)."""
    bad: list[str] = []
    born = False
    seq = -1
    bdseq: int | None = None
    types: dict[int, int] = {}  # alias -> datatype, of the current session
    devices: set[str] = set()
    owed: set[str] = set()  # live before a rebirth's NBIRTH and not born again yet (5.17 rebirth-action-2)
    for i, rec in enumerate(decoded):
        topic, raw = rec["topic"], rec.get("raw", {})
        kind = topic.split("/")[2]
        where = f"#{i} {topic}"
        if "error" in rec:
            bad.append(f"{where}: Tahu cannot decode: {rec['error']}")
            continue
        metrics = raw.get("metrics", [])
        if kind in ("NCMD", "DCMD"):
            continue  # sent to the node, not by it
        if kind == "NDEATH":
            got = [int(m.get("longValue", -1)) for m in metrics if m.get("name") == "bdSeq"]
            if "seq" in raw:
                bad.append(f"{where}: NDEATH carries a seq")
            if born and got != [bdseq]:
                bad.append(f"{where}: NDEATH bdSeq {got} does not match the NBIRTH's {bdseq}")
            born = False
            continue
        s = int(raw.get("seq", -1))
        if kind == "NBIRTH":
            if s != 0:
                bad.append(f"{where}: NBIRTH seq {s}, not 0")
            got = [int(m.get("longValue", -1)) for m in metrics if m.get("name") == "bdSeq" and m.get("datatype") == 4]
            if len(got) != 1:
                bad.append(f"{where}: NBIRTH without one Int64 bdSeq")
            bdseq = got[0] if got else None
            if not any(m.get("name") == "Node Control/Rebirth" and m.get("booleanValue") is False for m in metrics):
                bad.append(f"{where}: NBIRTH without Node Control/Rebirth = false")
            if any(m.get("name") == "Node Control/Rebirth" and "alias" in m for m in metrics):
                bad.append(f"{where}: NBIRTH gives Node Control/Rebirth an alias (5.17: it must have none)")
            owed = set(devices) if born else set()
            born, seq, types, devices = True, 0, {}, set()
            bad += _births(where, metrics, types)
            continue
        if not born:
            bad.append(f"{where}: {kind} before any NBIRTH")
            continue
        if s != (seq + 1) % 256:
            bad.append(f"{where}: seq {s} after {seq}")
        seq = s
        device = topic.split("/")[4] if len(topic.split("/")) > 4 else ""
        if kind.startswith("D") and not device:
            bad.append(f"{where}: {kind} with an empty device id")
        if kind == "DBIRTH":
            devices.add(device)
            owed.discard(device)
            bad += _births(where, metrics, types)
        elif kind == "DDEATH":
            devices.discard(device)
            owed.discard(device)
        elif kind in ("DDATA", "NDATA"):
            if kind == "DDATA" and device not in devices:
                bad.append(f"{where}: DDATA for {device} without a live DBIRTH")
            if owed:
                bad.append(f"{where}: {kind} before the rebirth's DBIRTH of {sorted(owed)}")
                owed = set()
            bad += _data(where, metrics, types)
    return bad


def _births(where: str, metrics: list[dict[str, Any]], types: dict[int, int]) -> list[str]:
    bad = []
    for m in metrics:
        if "name" not in m or "datatype" not in m or "timestamp" not in m:
            bad.append(f"{where}: birth metric without name, datatype or timestamp: {m}")
            continue
        if m["name"] in ("bdSeq", "Node Control/Rebirth"):
            continue  # no alias: bdSeq by the spec's example, Rebirth by 5.17 (checked by the caller)
        if "alias" not in m:
            bad.append(f"{where}: birth metric {m['name']} without alias")
            continue
        alias = int(m["alias"])
        if alias in types and types[alias] != m["datatype"]:
            bad.append(f"{where}: alias {alias} born twice with different types")
        types[alias] = m["datatype"]
        if not m.get("isNull") and VALUE_FIELD.get(m["datatype"]) not in m:
            bad.append(f"{where}: {m['name']} value not in the field of datatype {m['datatype']}")
    return bad + [p for m in metrics for p in property_violations(where, m)]


def _data(where: str, metrics: list[dict[str, Any]], types: dict[int, int]) -> list[str]:
    bad = []
    for m in metrics:
        alias = int(m.get("alias", -1))
        if "name" in m:
            bad.append(f"{where}: DATA metric carries a name ({m['name']})")
        if alias not in types:
            bad.append(f"{where}: alias {alias} was not declared in a birth")
            continue
        if "timestamp" not in m:
            bad.append(f"{where}: DATA metric {alias} without timestamp")
        if not m.get("isNull") and VALUE_FIELD.get(types[alias]) not in m:
            bad.append(f"{where}: alias {alias} value not in the field of its datatype {types[alias]}")
        bad += property_violations(where, m)
    return bad


def property_violations(where: str, metric: dict[str, Any]) -> list[str]:
    """A metric's PropertySet against 6.4.8-6.4.9 (Payloads): as many values as keys, every value
    typed (with a type a property may have) and in the field of its type, the Quality property an
    Int32 0, 192 or 500, and the keys hosts know with the type they read."""
    props = metric.get("properties")
    if props is None:
        return []
    what = f"{where}: metric {metric.get('name', metric.get('alias'))}"
    keys, values = props.get("keys", []), props.get("values", [])
    if len(keys) != len(values):
        return [f"{what}: PropertySet with {len(keys)} keys and {len(values)} values"]
    bad = []
    for key, pv in zip(keys, values, strict=True):
        kind = pv.get("type")
        if kind not in PROPERTY_TYPES:
            bad.append(f"{what}: property {key} with type {kind}")
            continue
        allowed = KNOWN_PROPERTY_TYPES.get(key)
        if allowed is not None and kind not in allowed:
            bad.append(f"{what}: property {key} of type {kind}, hosts read {sorted(allowed)}")
        if pv.get("isNull"):
            continue
        field = VALUE_FIELD.get(kind)
        if field is not None and field not in pv:
            bad.append(f"{what}: property {key} value not in the field of its type {kind}: {pv}")
        if key == "Quality" and pv.get("intValue") not in QUALITY_CODES:
            bad.append(f"{what}: Quality {pv.get('intValue')} is not one of 0, 192, 500")
    return bad


def birth_names(decoded: list[dict[str, Any]], device: str) -> dict[str, dict[str, Any]]:
    """name -> metric of the last DBIRTH of ``device``."""
    births = [r for r in decoded if r["topic"].split("/")[2] == "DBIRTH" and r["topic"].endswith("/" + device)]
    return {m["name"]: m for m in births[-1]["raw"]["metrics"]} if births else {}
