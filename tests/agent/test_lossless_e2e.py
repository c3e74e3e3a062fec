"""Every Modbus type in every byte/word order arrives exactly, end to end: a pymodbus server with
independently encoded registers, the agent as a process, mosquitto, and a MessagePack subscriber."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from plc_known import known_plc_server, toml_tags
from support import AgentProcess, Subscriber, write_config


@pytest.fixture
def plc_server() -> Iterator[tuple[int, list[dict[str, Any]], dict[str, Any]]]:
    with known_plc_server() as server:
        yield server


def test_every_type_and_order_arrives_exactly(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber, plc_server: tuple[int, Any, Any]
) -> None:
    port, tags, expected = plc_server
    instances = f"""
[[instances]]
name = "plc"
plugin = "plc"
interval_s = 0.5
options = {{ report_by_exception = false }}
[instances.driver]
type = "modbus"
port = {port}
tags = [
{toml_tags(tags)}
]
"""
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=instances)
    agent = AgentProcess(cfg, broker.url)
    try:
        msgs = subscriber.wait_for(lambda: subscriber.on("edge/t1/data/plc"), 20, "plc data")
        got = msgs[0].env["d"]
        assert "q" not in msgs[0].env, msgs[0].env.get("q")
        wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v or type(got.get(k)) is not type(v)}
        assert not wrong, f"values not exact (got, expected): {wrong}"
        # the three witnesses, by name
        assert got["float64_ABCD_0"] == 3.141592653589793
        assert got["float64_DCBA_1"] == -27182818284.59045
        assert got["scaled_uint32_CDAB"] == 1234.567
    finally:
        assert agent.stop() == 0
