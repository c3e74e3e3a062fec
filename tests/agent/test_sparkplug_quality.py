"""Quality over Sparkplug in a run with faults: a thermocouple that opens and recovers, a PLC that
is down, a driver returning junk, and a primary host that goes away (store-and-forward replays
the faults as historical). Every metric of every message, decoded by Eclipse Tahu's codec, carries
a ``Quality`` property only as an Int32 0, 192 or 500 (Sparkplug 3.0 6.4.9.1), our reason beside
it, and follows the other PropertySet rules (tests/spb_rules.py)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.sparkplug.payload import Payload
from spb_rules import QUALITY_CODES, Recorder, birth_names, tahu_available, tahu_decode, violations
from support import AgentProcess, write_config

pytestmark = pytest.mark.skipif(not tahu_available(), reason="needs node and `make npm` (Tahu's sparkplug-payload)")

SPARKPLUG = '[sparkplug]\nenabled = true\ngroup_id = "plant"\nprimary_host_id = "scada"\n'


def instances(dead_port: int) -> str:
    return f"""
[[instances]]
name = "thermo"
plugin = "temperature"
interval_s = 0.3

[instances.driver]
type = "max31855"
backend = "sim"
variant = "K"

[[instances.driver.channels]]
name = "ok"
device = "/dev/spidev0.0"
sim = {{ start_c = 40.0 }}

[[instances.driver.channels]]
name = "opens"
device = "/dev/spidev0.1"
sim = {{ start_c = 50.0, fault = "open_circuit", fault_after_s = 1.5, fault_for_s = 12 }}

[[instances]]
name = "plc"
plugin = "plc"
interval_s = 0.5

[instances.driver]
type = "modbus"
port = {dead_port}
tags = [
  {{ name = "speed", address = 0, type = "uint16", unit = "rpm" }},
]

[[instances]]
name = "junk"
plugin = "values"
interval_s = 0.3
options = {{ heartbeat_s = 0 }}
driver = {{ type = "sim", channels = 2, junk_every = 2 }}
"""


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port nothing listens on: the PLC is down (connection refused) for the whole run."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    yield port


def state(online: bool, ts: int) -> bytes:
    return json.dumps({"online": online, "timestamp": ts}).encode()


def qualities(decoded: list[dict[str, Any]]) -> list[tuple[str, bool, dict[str, Any]]]:
    """(topic, historical, {key: PropertyValue}) of every metric that carries a PropertySet."""
    out = []
    for r in decoded:
        for m in r.get("raw", {}).get("metrics", []):
            props = m.get("properties")
            if props:
                by_key = dict(zip(props["keys"], props["values"], strict=True))
                out.append((r["topic"], bool(m.get("isHistorical")), by_key))
    return out


def has_quality(rec: Recorder, device: str, code: int, reason: str) -> bool:
    """A DDATA of ``device`` says Quality ``code`` with ``reason`` (decoded here: cheap to poll)."""
    for msg in rec.of("DDATA"):
        if msg.topic.endswith(f"/{device}"):
            p = Payload()
            p.ParseFromString(msg.payload)
            for m in p.metrics:
                props = dict(zip(m.properties.keys, m.properties.values, strict=True))
                said = props.get("qualityReason")
                if "Quality" in props and props["Quality"].int_value == code and said and said.string_value == reason:
                    return True
    return False


def test_every_quality_is_bad_good_or_stale_through_faults_and_replay(
    tmp_path: Path, broker: LocalBroker, dead_port: int
) -> None:
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=instances(dead_port), extra=SPARKPLUG)
    rec = Recorder(broker.url)
    agent = AgentProcess(cfg, broker.url)
    try:
        rec.publish("spBv1.0/STATE/scada", state(True, 1000), retain=True)
        rec.wait_for(lambda: has_quality(rec, "thermo", 0, "open_circuit"), 20, "the open thermocouple as BAD")
        rec.publish("spBv1.0/STATE/scada", state(False, 2000), retain=True)
        rec.wait_for(lambda: rec.of("NDEATH"), 10, "NDEATH when the host went offline")
        time.sleep(1.5)  # the faults go to the store
        rec.publish("spBv1.0/STATE/scada", state(True, 3000), retain=True)
        rec.wait_for(lambda: len(rec.of("NBIRTH")) >= 2, 15, "the second birth")
        rec.wait_for(lambda: has_quality(rec, "thermo", 192, "good"), 30, "the thermocouple good again")
    finally:
        assert agent.stop() == 0, agent.log()
    rec.wait_for(lambda: len(rec.of("NDEATH")) >= 2, 5, "the final NDEATH")
    rec.close()
    decoded = tahu_decode(rec.msgs)
    bad = violations(decoded)  # the session rules, and every PropertySet of every metric
    assert bad == [], "\n".join(bad)
    seen = qualities(decoded)
    quality = [(t, h, p["Quality"]) for t, h, p in seen if "Quality" in p]
    assert quality, "no Quality property at all"
    wrong = [(t, q) for t, _, q in quality if q.get("type") != 3 or q.get("intValue") not in QUALITY_CODES]
    assert wrong == [], wrong
    for _, _, p in seen:  # a reason travels with every Quality that is not GOOD
        if p.get("Quality", {}).get("intValue", 192) != 192:
            assert p["qualityReason"]["type"] == 12 and p["qualityReason"]["stringValue"] not in ("", "good"), p
    reasons = {(t.rsplit("/", 1)[1], p["qualityReason"]["stringValue"]) for t, _, p in seen if "qualityReason" in p}
    assert ("thermo", "open_circuit") in reasons, reasons
    assert any(d == "plc" and r in ("comm_error", "timeout", "device_busy") for d, r in reasons), reasons
    assert ("junk", "bad_value") in reasons, reasons
    assert any(h and q.get("intValue") == 0 for _, h, q in quality), "the replay carries the faults' quality"
    plc = birth_names(decoded, "plc")
    assert any(n.startswith("Faults/") and m.get("booleanValue") for n, m in plc.items()), "the PLC down as a Fault"
