"""The reference plant (simulated) as a Sparkplug edge node: every message it sends in a run with
a rebirth is decoded by Eclipse Tahu's JS codec and obeys the session rules; every instance is a
device whose birth declares its values with their units."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from edge_agent.agent.config.declared_values import declared
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import load
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.sparkplug.payload import DataType, Payload, set_value
from spb_rules import Recorder, birth_names, tahu_available, tahu_decode, violations
from support import ROOT, AgentProcess

pytestmark = pytest.mark.skipif(not tahu_available(), reason="needs node and `make npm` (Tahu's sparkplug-payload)")


def _plant(tmp_path: Path) -> Path:
    text = (ROOT / "examples" / "reference-plant.toml").read_text()
    text = text.replace('state_dir = "/tmp/edge-agent-reference"', f'state_dir = "{tmp_path / "state"}"')
    text = text.replace('transport = "tcp"', 'backend = "sim"')
    text = re.sub(r'^type = "iio"$', 'type = "iio"\nbackend = "sim"', text, flags=re.M)
    for csv in (ROOT / "examples").glob("*.csv"):
        (tmp_path / csv.name).write_bytes(csv.read_bytes())
    path = tmp_path / "plant.toml"
    path.write_text(text + '\n[sparkplug]\nenabled = true\ngroup_id = "plant"\n')
    return path


def _rebirth() -> bytes:
    p = Payload()
    p.timestamp = 1
    m = p.metrics.add()
    m.name, m.datatype, m.timestamp = "Node Control/Rebirth", int(DataType.BOOLEAN), 1
    set_value(m, DataType.BOOLEAN, True)
    return bytes(p.SerializeToString())


def test_reference_plant_sparkplug_session(tmp_path: Path, broker: LocalBroker) -> None:
    path = _plant(tmp_path)
    config = load(path, load_registry())
    node = config.agent_id
    rec = Recorder(broker.url)
    agent = AgentProcess(path, broker.url)
    try:
        devices = {f"spBv1.0/plant/DBIRTH/{node}/{i.name}" for i in config.instances}
        rec.wait_for(lambda: {m.topic for m in rec.of("DBIRTH")} >= devices, 60, "a DBIRTH of every instance")
        rec.publish(f"spBv1.0/plant/NCMD/{node}", _rebirth())
        rec.wait_for(lambda: len(rec.of("NBIRTH")) >= 2, 15, "the rebirth")
        time.sleep(3.0)
    finally:
        assert agent.stop() == 0, agent.log()
    rec.wait_for(lambda: rec.of("NDEATH"), 5, "NDEATH")
    rec.close()
    decoded = tahu_decode(rec.msgs)
    assert violations(decoded) == []
    assert not [r for r in decoded if "error" in r]
    for inst in config.instances:
        born = birth_names(decoded, inst.name)
        for spec in declared(inst) or ():
            if "*" in spec.key:
                continue
            name = spec.key.replace(".", "/") + ("" if spec.length is None else "/0")  # lists: one per element
            assert name in born, f"{inst.name}: {spec.key} not in its DBIRTH"
            props = born[name].get("properties", {})
            if spec.unit:
                keys, values = props.get("keys", []), props.get("values", [])
                assert dict(zip(keys, [v.get("stringValue") for v in values], strict=True)).get("engUnit") == spec.unit
