"""Fuzzing every inbound topic's payload (issue 30, 8; docs/security.md).

Two layers: each parser the network reaches is total over arbitrary input (it returns, or raises
only its own rejection type); and a running agent with remote config and Sparkplug on gets the same
payloads on every topic it subscribes to, and is still alive, answering and publishing afterwards,
with no traceback in its log. Example counts are bounded so the whole file runs in seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import msgpack
from edge_agent.agent.remote.commands import CommandError, parse_request
from edge_agent.agent.remote.config_push import DOC_KEYS, parse_document
from edge_agent.agent.runtime.control import Rejected
from edge_agent.agent.sparkplug.commands import parse_state
from edge_agent.agent.sparkplug.payload import DataType, Payload, get_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import AgentProcess, Subscriber, write_config

EXTREME_INTS = st.sampled_from([2**64, 2**64 - 1, 2**63, -(2**63) - 1, -(2**63), 2**53, 0, -1])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    EXTREME_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=25,
)
docs = st.dictionaries(st.sampled_from([*DOC_KEYS, "instances", "x"]), values, max_size=8)


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # NaN, Infinity and integers beyond 64 bits, as a hostile client sends


def _msgpack(doc: Any) -> bytes:
    try:
        return bytes(msgpack.packb(doc))
    except (OverflowError, ValueError):
        return b"\xc1"


def _sparkplug(metrics: list[tuple[str, int, Any]]) -> bytes:
    p = Payload()
    for name, datatype, value in metrics:
        m = p.metrics.add()
        m.name, m.datatype = name, datatype
        if isinstance(value, bool):
            m.boolean_value = value
        elif isinstance(value, int):
            m.long_value = value % 2**64
        elif isinstance(value, float):
            m.double_value = value
        elif isinstance(value, str):
            m.string_value = value
    return bytes(p.SerializeToString())


metric_names = st.one_of(
    st.sampled_from(["Node Control/Rebirth", "Node Control/Next Server", "setpoint", "Event/Kind", ""]),
    st.text(max_size=20),
)
metric_values = st.one_of(st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=20))
sparkplug_payloads = st.lists(st.tuples(metric_names, st.integers(0, 40), metric_values), max_size=5).map(_sparkplug)
state_payloads = st.one_of(
    st.fixed_dictionaries({"online": scalars, "timestamp": scalars}).map(_json),
    values.map(_json),
    st.binary(max_size=60),
)
payloads = st.one_of(
    st.binary(max_size=200),
    docs.map(_json),
    docs.map(_msgpack),
    values.map(_json),
    sparkplug_payloads,
    state_payloads,
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(payload=payloads)
def test_every_parser_is_total(payload: bytes) -> None:
    """Whatever arrives, each parser returns or raises its own rejection: never anything else."""
    try:
        parse_document(payload, 1 << 20)
    except Rejected as exc:
        assert exc.errors and all(isinstance(e, str) and len(e) <= 300 for e in exc.errors)
    try:
        parse_request(payload)
    except CommandError:
        pass
    try:
        online, ts = parse_state(payload)
        assert isinstance(online, bool) and 0 <= ts < 2**53
    except ValueError:
        pass
    p = Payload()
    try:
        p.ParseFromString(payload)
    except Exception:  # protobuf's DecodeError and friends: the node logs and drops it
        return
    for m in p.metrics:
        get_value(m, DataType(m.datatype) if m.datatype in DataType._value2member_map_ else DataType.BOOLEAN)


INSTANCES = """
[[instances]]
name = "probe"
plugin = "values"
interval_s = 0.2
driver = { type = "sim", profile = "ramp", amplitude = 100.0, period_s = 1000 }
options = { heartbeat_s = 0 }
"""
EXTRA = '[remote]\n[sparkplug]\nenabled = true\ngroup_id = "plant"\nprimary_host_id = "scada"\n'
TOPICS = (
    "edge/t1/config/set",
    "edge/t1/config/desired",
    "edge/group/line1/config/desired",
    "edge/t1/cmd/ping",
    "edge/t1/cmd/fuzz",
    "spBv1.0/plant/NCMD/t1",
    "spBv1.0/plant/DCMD/t1/probe",
    "spBv1.0/STATE/scada",
)


def test_a_running_agent_survives_fuzz_on_every_inbound_topic(tmp_path: Path, broker: Any) -> None:
    """Each example goes to every inbound topic; afterwards the agent answers a ping and publishes."""
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=INSTANCES, extra=EXTRA)
    cfg.write_text(cfg.read_text().replace('id = "t1"', 'id = "t1"\ngroups = ["line1"]', 1))
    sub = Subscriber(broker.url, ["edge/t1/data/#", "edge/t1/cmd/+/result", "spBv1.0/plant/#"])
    agent = AgentProcess(cfg, broker.url)
    try:
        sub.wait_for(lambda: len(sub.on("edge/t1/data/probe")) >= 2, 20, "the agent running")

        @settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        @given(payload=payloads)
        def publish_everywhere(payload: bytes) -> None:
            for topic in TOPICS:
                sub.client.publish(topic, payload, qos=0)
            time.sleep(0.02)  # about the inbound rate limit: most examples are read, not shed

        publish_everywhere()
        sub.client.publish("edge/t1/cmd/ping", msgpack.packb({"id": "alive"}), qos=1)
        sub.wait_for(
            lambda: any(m.env["d"].get("id") == "alive" for m in sub.on("edge/t1/cmd/ping/result")), 15, "ping"
        )
        n = len(sub.on("edge/t1/data/probe"))
        sub.wait_for(lambda: len(sub.on("edge/t1/data/probe")) >= n + 3, 10, "data after the fuzz")
        assert agent.proc.poll() is None
    finally:
        agent.stop()
        sub.close()
    log = agent.log()
    assert "Traceback" not in log, log[-3000:]
