"""The Sparkplug B edge node end to end: the agent as a process, mosquitto, a pymodbus PLC with
known values, and every message decoded by Eclipse Tahu's JavaScript codec (an independent
implementation) and checked against the Sparkplug 3.0 session rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.sparkplug.payload import DataType, Payload, set_value
from plc_known import known_plc_server, toml_tags
from spb_rules import Recorder, birth_names, tahu_available, tahu_decode, value_of, violations
from support import AgentProcess, write_config

pytestmark = pytest.mark.skipif(not tahu_available(), reason="needs node and `make npm` (Tahu's sparkplug-payload)")

SPARKPLUG = '[sparkplug]\nenabled = true\ngroup_id = "plant"\n'


def plc_instances(port: int, tags: list[dict[str, Any]]) -> str:
    return f"""
[[instances]]
name = "plc"
plugin = "plc"
interval_s = 0.3
options = {{ allow_writes = true }}
[instances.driver]
type = "modbus"
port = {port}
tags = [
{toml_tags(tags)}
]

[[instances]]
name = "ramp"
plugin = "values"
interval_s = 0.3
driver = {{ type = "sim", profile = "ramp", channels = 2, amplitude = 100.0 }}
"""


def command(metrics: list[tuple[str, DataType, Any]], alias: int | None = None) -> bytes:
    p = Payload()
    p.timestamp = 1
    for name, datatype, value in metrics:
        m = p.metrics.add()
        m.datatype, m.timestamp = int(datatype), 1
        if name:
            m.name = name
        if alias is not None:
            m.alias = alias
        set_value(m, datatype, value)
    return bytes(p.SerializeToString())


def read_back(rec: Recorder, name: str, value: int) -> bool:
    alias = alias_of(rec, name)
    for msg in rec.of("DDATA"):
        p = Payload()
        p.ParseFromString(msg.payload)
        if any(m.alias == alias and m.long_value == value for m in p.metrics):
            return True
    return False


def alias_of(rec: Recorder, name: str) -> int:
    for msg in reversed(rec.of("DBIRTH")):
        p = Payload()
        p.ParseFromString(msg.payload)
        for m in p.metrics:
            if m.name == name:
                return int(m.alias)
    raise AssertionError(f"{name} not born")


@pytest.fixture
def plc() -> Iterator[tuple[int, list[dict[str, Any]], dict[str, Any]]]:
    with known_plc_server() as server:
        yield server


def test_session_values_commands_and_death_decoded_by_tahu(tmp_path: Path, broker: LocalBroker, plc: Any) -> None:
    port, tags, expected = plc
    cfg = write_config(
        tmp_path / "a.toml", state_dir=tmp_path / "s", instances=plc_instances(port, tags), extra=SPARKPLUG
    )
    rec = Recorder(broker.url)
    agent = AgentProcess(cfg, broker.url)
    try:
        rec.wait_for(lambda: len(rec.of("DDATA")) >= 3, 20, "DDATA")
        rec.publish("spBv1.0/plant/NCMD/t1", command([("Node Control/Rebirth", DataType.BOOLEAN, True)]))
        rec.wait_for(lambda: len(rec.of("NBIRTH")) >= 2, 10, "the rebirth")
        rec.publish("spBv1.0/plant/DCMD/t1/plc", command([("setpoint", DataType.INT64, 250)]))
        rec.wait_for(lambda: read_back(rec, "setpoint", 250), 10, "the first write read back")
        # as Ignition sends it (3.0: commands carry the alias only, no name)
        rec.publish("spBv1.0/plant/DCMD/t1/plc", command([("", DataType.INT64, 260)], alias=alias_of(rec, "setpoint")))
        rec.wait_for(lambda: read_back(rec, "setpoint", 260), 10, "the alias-only write read back")
        rec.publish("spBv1.0/plant/DCMD/t1/plc", command([("float64_ABCD_0", DataType.DOUBLE, 1.0)]))
        rec.publish("spBv1.0/plant/DCMD/t1/plc", command([("setpoint", DataType.INT64, 9999)]))
        rec.wait_for(lambda: len(rec.of("DDATA")) >= 12, 10, "DDATA after the commands")
        rec.wait_for(lambda: sum(b"dcmd_rejected" in m.payload for m in rec.of("DDATA")) >= 2, 10, "two refusals")
    finally:
        assert agent.stop() == 0
    rec.wait_for(lambda: rec.of("NDEATH"), 5, "NDEATH")
    rec.close()
    decoded = tahu_decode(rec.msgs)
    assert violations(decoded) == []
    kinds = [r["topic"].split("/")[2] for r in decoded]
    assert kinds[0] == "NBIRTH" and kinds[-1] == "NDEATH" and kinds.count("NBIRTH") == 2
    assert {"DBIRTH", "DDATA", "DDEATH"} <= set(kinds)
    # every float64/int tag exact, through Tahu's decoder, with the type the tag needs
    born = birth_names(decoded, "plc")
    wrong = {}
    for key, value in expected.items():
        m = born[key]
        got = value_of(m, m["datatype"])
        if key != "setpoint" and (got != value or type(got) is not type(value)):
            wrong[key] = (got, value, m["datatype"])
    assert not wrong, wrong
    assert born["setpoint"]["properties"]["keys"] == ["engUnit", "Quality"]
    # the accepted write read back, the refusals as events an Ignition user sees
    setpoint = int(born["setpoint"]["alias"])
    after = [m for r in decoded if r["topic"].endswith("DDATA/t1/plc") for m in r["raw"]["metrics"]]
    assert any(int(m["alias"]) == setpoint and m.get("longValue") == "250" for m in after)
    assert any(int(m["alias"]) == setpoint and m.get("longValue") == "260" for m in after)
    messages = [m.get("stringValue", "") for m in after]
    assert any("float64_ABCD_0" in s and "not a writable" in s for s in messages), messages
    assert any("9999" in s and "500" in s for s in messages), messages


def test_rebirths_and_node_health_follow_the_session_rules(tmp_path: Path, broker: LocalBroker) -> None:
    """Issue 24: Rebirth without an alias, no DBIRTH with an empty device id (the node's health
    NDATA used to go out as one), and after each Rebirth every DBIRTH before any DDATA; a driver
    returning junk costs nothing of the session (the short CI version of bench.sparkplug --soak)."""
    instances = """
[[instances]]
name = "ramp"
plugin = "values"
interval_s = 0.2
driver = { type = "sim", profile = "ramp", channels = 2, amplitude = 100.0 }

[[instances]]
name = "slow"
plugin = "values"
interval_s = 0.7
options = { heartbeat_s = 0 }
driver = { type = "sim", profile = "sine", channels = 1 }

[[instances]]
name = "junk"
plugin = "values"
interval_s = 0.2
options = { heartbeat_s = 0 }
driver = { type = "sim", channels = 2, junk_every = 2 }
"""
    extra = SPARKPLUG + "health_interval_s = 1\n"
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=instances, extra=extra)
    rec = Recorder(broker.url)
    agent = AgentProcess(cfg, broker.url)
    rebirth = command([("Node Control/Rebirth", DataType.BOOLEAN, True)])
    try:
        rec.wait_for(lambda: len(rec.of("DDATA")) >= 5, 20, "DDATA")
        for n in (2, 3):
            rec.publish("spBv1.0/plant/NCMD/t1", rebirth)
            rec.wait_for(lambda n=n: len(rec.of("NBIRTH")) >= n, 10, "the rebirth")
            enough = len(rec.of("DDATA")) + 15  # ~3 s of data: node health (every 1 s) changed meanwhile
            rec.wait_for(lambda d=enough: len(rec.of("DDATA")) >= d, 10, "DDATA after it")
    finally:
        assert agent.stop() == 0
    rec.wait_for(lambda: rec.of("NDEATH"), 5, "NDEATH")
    rec.close()
    decoded = tahu_decode(rec.msgs)
    bad = violations(decoded)
    assert bad == [], "\n".join(bad)
    assert not [r["topic"] for r in decoded if r["topic"].endswith("/")], "no device without an id"
    junk = [r for r in decoded if r["topic"].endswith("/DDATA/t1/junk")]
    assert len(junk) >= 5, "the junk driver's device lives through its junk (strings, NaN, inf, lists)"
    born = birth_names(decoded, "junk")
    assert set(born) >= {"ch0", "ch1"} and "undeclared_junk" not in born, "never a metric it did not declare"
