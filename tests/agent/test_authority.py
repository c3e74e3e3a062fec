"""Issue 30 item 3: who may change what. Writes are gated (finite values, authority from the local
file only), against a running agent on a real broker and a real Modbus TCP server."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.remote.write_gate import WriteRefused, check_authority, check_finite
from plc_known import known_plc_server, toml_tags
from support import AgentProcess, Subscriber, write_config


def _plc_table(name: str, port: int, tags: list[dict[str, Any]], allow_writes: bool) -> dict[str, Any]:
    return {
        "name": name,
        "plugin": "plc",
        "interval_s": 0.5,
        "options": {"allow_writes": allow_writes, "heartbeat_s": 0},
        "driver": {"type": "modbus", "host": "127.0.0.1", "port": port, "tags": tags},
    }


def _file_tags(tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The file's map: the limited setpoint and one float32 tag made writable (0..100)."""
    chosen = [dict(t) for t in tags if t["name"] in ("setpoint", "float32_ABCD_0")]
    for t in chosen:
        if t["type"] == "float32":
            t.update(writable=True, min=0.0, max=100.0)
    return chosen


def _instances_toml(table: dict[str, Any]) -> str:
    o = table["options"]
    d = table["driver"]
    return (
        f'[[instances]]\nname = "{table["name"]}"\nplugin = "plc"\ninterval_s = 0.5\n'
        f"options = {{ allow_writes = {str(o['allow_writes']).lower()}, heartbeat_s = 0 }}\n"
        f'[instances.driver]\ntype = "modbus"\nhost = "127.0.0.1"\nport = {d["port"]}\n'
        f"tags = [\n{toml_tags(d['tags'])}\n]\n"
    )


class PlcAgent:
    """An agent whose file runs plc1 (writes on, setpoint 0..500) against a real Modbus server."""

    def __init__(self, tmp: Path, broker: LocalBroker, port: int, tags: list[dict[str, Any]], extra: str = "") -> None:
        self.file_tags = _file_tags(tags)
        self.port = port
        plc1 = _plc_table("plc1", port, self.file_tags, True)
        cfg = write_config(
            tmp / "a.toml",
            state_dir=tmp / "s",
            instances=_instances_toml(plc1),
            extra="[remote]\nmin_interval_s = 0\nverify_timeout_s = 5\n" + extra,
        )
        self.sub = Subscriber(broker.url)
        self.proc = AgentProcess(cfg, broker.url)
        self.sub.wait_for(lambda: self.sub.on("edge/t1/data/plc1"), 20, "plc1 data")
        self.version = 0

    def cmd(self, name: str, req: dict[str, Any]) -> dict[str, Any]:
        topic = f"edge/t1/cmd/{name}/result"
        before = len(self.sub.on(topic))
        self.sub.client.publish(f"edge/t1/cmd/{name}", msgpack.packb(req), qos=1)
        self.sub.wait_for(lambda: len(self.sub.on(topic)) > before, 10, f"answer to {name}")
        return self.sub.on(topic)[before].env["d"]

    def push(self, instances: list[dict[str, Any]]) -> dict[str, Any]:
        self.version += 1
        before = len(self.sub.on("edge/t1/config/result"))
        doc = {"version": self.version, "config": {"instances": instances}}
        self.sub.client.publish("edge/t1/config/set", msgpack.packb(doc), qos=1)
        self.sub.wait_for(lambda: len(self.sub.on("edge/t1/config/result")) > before, 20, "a config result")
        return self.sub.on("edge/t1/config/result")[before].env["d"]

    def setpoint(self) -> Any:
        values = [m.env["d"]["setpoint"] for m in self.sub.on("edge/t1/data/plc1") if "setpoint" in m.env["d"]]
        return values[-1]

    def close(self) -> None:
        try:
            assert self.proc.stop() == 0
        finally:
            self.sub.close()


@pytest.fixture
def plc_agent(tmp_path: Path, broker: LocalBroker) -> Iterator[PlcAgent]:
    with known_plc_server() as (port, tags, _):
        a = PlcAgent(tmp_path, broker, port, tags)
        try:
            yield a
        finally:
            a.close()


def test_nan_and_infinities_are_never_written(plc_agent: PlcAgent) -> None:
    for bad in (math.nan, math.inf, -math.inf):
        for tag in ("float32_ABCD_0", "setpoint"):
            answer = plc_agent.cmd("write", {"id": 1, "instance": "plc1", "args": {"tag": tag, "value": bad}})
            assert answer["ok"] is False and "NaN and infinities" in answer["error"], (tag, bad, answer)
    ok = plc_agent.cmd("write", {"id": 2, "instance": "plc1", "args": {"tag": "float32_ABCD_0", "value": 12.5}})
    assert ok["ok"] is True, ok


def test_a_pushed_instance_cannot_write_or_widen_the_files_limits(plc_agent: PlcAgent) -> None:
    # The review's attack: an unsigned push adds "evil" on plc1's address, writes on, no limits.
    open_tags = [{**t, "writable": True, "min": None, "max": None} for t in plc_agent.file_tags]
    open_tags = [{k: v for k, v in t.items() if v is not None} for t in open_tags]
    evil = _plc_table("evil", plc_agent.port, open_tags, True)
    assert plc_agent.push([evil])["status"] == "accepted"
    refused = plc_agent.cmd("write", {"id": 3, "instance": "evil", "args": {"tag": "setpoint", "value": 32767}})
    assert refused["ok"] is False and "pushed instances may not write" in refused["error"], refused
    assert "allow_pushed_writes" in refused["error"]
    # A push that overrides plc1 with a wider limit: the file's limits still hold.
    wide = _plc_table("plc1", plc_agent.port, open_tags, True)
    assert plc_agent.push([wide])["status"] == "accepted"
    widened = plc_agent.cmd("write", {"id": 4, "instance": "plc1", "args": {"tag": "setpoint", "value": 9999}})
    assert widened["ok"] is False and "writes follow the local file only" in widened["error"], widened
    assert plc_agent.setpoint() == 100  # the PLC never saw either write


def test_the_gate_rules() -> None:
    for bad in (math.nan, math.inf, -math.inf, [1.0, math.nan]):
        with pytest.raises(WriteRefused, match="NaN and infinities"):
            check_finite(bad, "plc.sp")
    check_finite(1e308, "plc.sp")  # finite: the driver's range and type checks decide
    file_t = {"plc": {"plugin": "plc", "driver": {"type": "modbus", "port": 502}, "options": {"allow_writes": True}}}
    same = {"plc": {**file_t["plc"], "interval_s": 5, "options": {"allow_writes": True, "heartbeat_s": 9}}}
    check_authority("plc", file_tables=file_t, pushed_tables=same, allow_pushed_writes=[])  # only timing changed
    check_authority("plc", file_tables=file_t, pushed_tables={}, allow_pushed_writes=[])  # the file's own
    moved = {"plc": {**file_t["plc"], "driver": {"type": "modbus", "port": 503}}}
    with pytest.raises(WriteRefused, match="follow the local file"):
        check_authority("plc", file_tables=file_t, pushed_tables=moved, allow_pushed_writes=[])
    check_authority("plc", file_tables=file_t, pushed_tables=moved, allow_pushed_writes=["plc"])  # allowed
    with pytest.raises(WriteRefused, match="pushed instances may not write"):
        check_authority("new", file_tables=file_t, pushed_tables={"new": moved["plc"]}, allow_pushed_writes=[])


def test_the_modbus_driver_refuses_nan_itself() -> None:
    # Defence in depth: a caller that bypasses the agent's gate (a plugin test, a third-party plugin).
    from edge_agent.drivers.modbus.driver import check_write_value
    from edge_agent.drivers.modbus.tags import DataType, Tag

    tag = Tag(name="sp", address=1, type=DataType.FLOAT32, writable=True, min=0, max=200)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="NaN and infinities"):
            check_write_value(tag, bad)
    assert check_write_value(tag, 12.5) == 12.5
