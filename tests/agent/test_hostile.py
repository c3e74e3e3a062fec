"""The hostile-input suite (issue 30, docs/security.md): every attack of the security review against
a running agent on mosquitto, and the bounds it relies on checked field by field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgpack
import pytest
from edge_agent.agent.bounds import echo_id, value_errors
from edge_agent.agent.config.layers import APPLIED_FILE, load_layer
from edge_agent.agent.remote.commands import CommandError, parse_request
from edge_agent.agent.remote.config_push import parse_document
from edge_agent.agent.runtime.control import Rejected
from support import AgentProcess, RemoteAgent, Subscriber, write_config

EXTREMES: list[Any] = [2**64, -(2**63) - 1, math.nan, math.inf, -math.inf, 1e308, "x" * 10_000_000]
DOC_FIELDS = ("version", "id", "target", "expires", "nonce", "check_s", "force", "kid", "sig")
GOOD = {"version": 3, "config": {"instances": []}}


def _json(doc: dict[str, Any]) -> bytes:
    """JSON as a hostile client writes it: huge integers and NaN/Infinity literals allowed."""
    return json.dumps(doc).encode()


@pytest.mark.parametrize("field", DOC_FIELDS)
@pytest.mark.parametrize("value", EXTREMES, ids=["2^64", "-2^63-1", "nan", "inf", "-inf", "1e308", "10MB"])
def test_every_push_field_refuses_the_extremes(field: str, value: Any) -> None:
    """No extreme value of any field passes the parser (none of them is a valid value)."""
    doc = {**GOOD, field: value}
    carried = not isinstance(value, int) or -(2**63) <= value < 2**64  # else MessagePack cannot carry it
    for payload in (_json(doc), msgpack.packb(doc)) if carried else (_json(doc),):
        with pytest.raises(Rejected) as exc:
            parse_document(payload, 16 * 1024 * 1024)
        assert any(field in e or "(document)" in e for e in exc.value.errors), exc.value.errors
        assert all(len(e) <= 300 for e in exc.value.errors)
        ident = exc.value.ident
        assert ident is None or (isinstance(ident, str) and len(ident) <= 128) or abs(ident) < 2**53


@pytest.mark.parametrize("value", EXTREMES[:5], ids=["2^64", "-2^63-1", "nan", "inf", "-inf"])
def test_extremes_inside_instances_are_refused(value: Any) -> None:
    """A number no message can carry (or NaN) anywhere in a pushed table is refused with its path."""
    doc = {"version": 2, "config": {"instances": [{"name": "a", "plugin": "values", "interval_s": value}]}}
    with pytest.raises(Rejected) as exc:
        parse_document(_json(doc), 1 << 20)
    assert any("(document).config.instances[0].interval_s" in e for e in exc.value.errors), exc.value.errors


def test_command_requests_are_bounded() -> None:
    """Command ids are echoed bounded; NaN and huge integers in a request are refused."""
    assert echo_id("x" * 1_000_000) == "x" * 128
    assert echo_id(2**64) is None and echo_id(7) == 7 and echo_id({"a": 1}) is None
    for bad in ('{"id": 1, "args": {"value": NaN}}', '{"id": 18446744073709551616}'):
        with pytest.raises(CommandError):
            parse_request(bad.encode())
    assert value_errors({"a": [[[[1]]]]}) == []


def test_a_stored_layer_out_of_range_is_quarantined(tmp_path: Path) -> None:
    """The state file a 2^64 version left behind (before the fix) is moved aside, not run."""
    (tmp_path / APPLIED_FILE).write_text(json.dumps({"version": 2**64, "instances": []}))
    layer = load_layer(tmp_path)
    assert layer.version == 0 and layer.faults and "quarantined" in layer.faults[0]
    assert not (tmp_path / APPLIED_FILE).exists()
    assert list(tmp_path.glob(APPLIED_FILE + ".quarantined-*"))


def test_huge_version_push_is_rejected_and_the_agent_keeps_talking(agent: RemoteAgent) -> None:
    """Issue 30, 1: the one JSON push that silenced the agent is now a clear rejection."""
    raw = b'{"version": 18446744073709551616, "id": "big", "config": {"instances": []}}'
    result = agent.push(None, raw=raw)
    assert result["status"] == "rejected" and result["id"] == "big"
    assert any(e.startswith("version:") for e in result["errors"]), result
    assert "attempted" not in result
    assert agent.push({"version": 1, "config": {"instances": []}})["status"] == "accepted"
    states = agent.sub.on("edge/t1/config/state")
    assert states[-1].env["d"]["version"] == 1


def test_a_bad_state_file_is_quarantined_at_start(tmp_path: Path, broker: Any) -> None:
    """A restart over a state file no message can carry starts on the local file, with an event."""
    state = tmp_path / "state"
    state.mkdir()
    (state / APPLIED_FILE).write_text('{"version": 18446744073709551616, "instances": []}')
    cfg = write_config(tmp_path / "a.toml", state_dir=state, instances=_BASE_STEADY)
    sub = Subscriber(broker.url)
    proc = AgentProcess(cfg, broker.url)
    try:
        sub.wait_for(lambda: len(sub.on("edge/t1/data/steady")) >= 2, 20, "data after the quarantine")
        events = [m.env["d"] for m in sub.on("edge/t1/event/agent")]
        assert any(e["kind"] == "state_quarantined" for e in events), events
        assert sub.on("edge/t1/status")[-1].env["d"]["config_version"] == 0
    finally:
        proc.kill()
        sub.close()
    assert list(state.glob(APPLIED_FILE + ".quarantined-*"))


_BASE_STEADY = """
[[instances]]
name = "steady"
plugin = "values"
interval_s = 0.1
driver = { type = "sim", profile = "ramp", amplitude = 1000.0, period_s = 1000 }
options = { heartbeat_s = 0 }
"""
