"""cmd/write end to end: the command framework routes to the PLC plugin's guarded writes."""

from __future__ import annotations

from pathlib import Path

import msgpack
from edge_agent.agent.devtools.local_broker import LocalBroker
from support import AgentProcess, Subscriber, write_config

PLC = """
[[instances]]
name = "plc"
plugin = "plc"
interval_s = 0.5
options = { allow_writes = true }
[instances.driver]
type = "modbus"
backend = "sim"
tags = [
  { name = "setpoint", table = "holding_register", address = 10, type = "uint16", writable = true, min = 0, max = 500 },
  { name = "speed", table = "holding_register", address = 11, type = "uint16" },
]
"""


def _cmd(sub: Subscriber, req: dict[str, object]) -> dict[str, object]:
    before = len(sub.on("edge/t1/cmd/write/result"))
    sub.client.publish("edge/t1/cmd/write", msgpack.packb(req), qos=1)
    sub.wait_for(lambda: len(sub.on("edge/t1/cmd/write/result")) > before, 10, "write answer")
    return sub.on("edge/t1/cmd/write/result")[before].env["d"]  # type: ignore[no-any-return]


def test_write_command_checks_tag_and_range(tmp_path: Path, broker: LocalBroker, subscriber: Subscriber) -> None:
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=PLC)
    agent = AgentProcess(cfg, broker.url)
    try:
        subscriber.wait_for(lambda: subscriber.on("edge/t1/data/plc"), 20, "plc data")
        ok = _cmd(subscriber, {"id": 1, "instance": "plc", "args": {"tag": "setpoint", "value": 123}})
        assert ok["ok"] is True, ok
        subscriber.wait_for(
            lambda: any(m.env["d"].get("setpoint") == 123 for m in subscriber.on("edge/t1/data/plc")),
            10,
            "the written value read back",
        )
        not_writable = _cmd(subscriber, {"id": 2, "instance": "plc", "args": {"tag": "speed", "value": 1}})
        assert not_writable["ok"] is False and "speed" in str(not_writable["error"])
        too_big = _cmd(subscriber, {"id": 3, "instance": "plc", "args": {"tag": "setpoint", "value": 9999}})
        assert too_big["ok"] is False and "500" in str(too_big["error"])
    finally:
        assert agent.stop() == 0
