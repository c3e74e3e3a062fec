"""Issue 30 item 3: who may change what. Writes are gated (finite values, authority from the local
file only), against a running agent on a real broker and a real Modbus TCP server."""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.ops.fleet import signed_request
from edge_agent.agent.remote.authority import command_class
from edge_agent.agent.remote.signing import load_private_key
from edge_agent.agent.remote.write_gate import WriteRefused, check_authority, check_finite
from edge_agent.agent.sparkplug.payload import DataType, Payload, set_value
from plc_known import known_plc_server, toml_tags
from spb_rules import Recorder
from support import AgentProcess, RemoteAgent, Subscriber, cli, scaled, write_config


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
        self.cfg = cfg = write_config(
            tmp / "a.toml",
            state_dir=tmp / "s",
            instances=_instances_toml(plc1),
            extra=f"[remote]\nmin_interval_s = 0\nverify_timeout_s = {scaled(5):.1f}\n" + extra,
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
            assert answer["ok"] is False and "not a finite number" in answer["error"], (tag, bad, answer)
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
        with pytest.raises(WriteRefused, match="not a finite number"):
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
        with pytest.raises(ValueError, match="not a finite number"):
            check_write_value(tag, bad)
    assert check_write_value(tag, 12.5) == 12.5


def _keygen(path: Path) -> tuple[Any, str]:
    """A key pair as `edge-agent keygen` writes it (its own function, in this process): (private key, KEY.pub)."""
    from argparse import Namespace

    from edge_agent.agent.ops.push import cmd_keygen

    assert cmd_keygen(Namespace(out=str(path))) == 0
    return load_private_key(str(path)), f"{path}.pub"


def _cmd(a: RemoteAgent, name: str, req: dict[str, Any]) -> dict[str, Any]:
    topic = f"edge/t1/cmd/{name}/result"
    before = len(a.sub.on(topic))
    a.sub.client.publish(f"edge/t1/cmd/{name}", msgpack.packb(req), qos=1)
    a.sub.wait_for(lambda: len(a.sub.on(topic)) > before, 10, f"answer to {name}")
    return a.sub.on(topic)[before].env["d"]


def _audits(a: RemoteAgent) -> list[dict[str, Any]]:
    return [m.env["d"] for m in a.sub.on("edge/t1/event/agent") if m.env["d"]["kind"] == "audit"]


def test_change_commands_need_a_signature_by_a_key_the_file_trusts(tmp_path: Path, broker: LocalBroker) -> None:
    ops, ops_pub = _keygen(tmp_path / "ops.key")
    panel, panel_pub = _keygen(tmp_path / "panel.key")
    extra = f'require_signature = true\ntrusted_keys = ["{ops_pub}"]\ncommand_keys = {{ write = ["{panel_pub}"] }}\n'
    a = RemoteAgent(tmp_path, broker, extra=extra)
    try:
        assert _cmd(a, "ping", {"id": 1})["ok"], "read commands stay open"
        # The review's attack: an unsigned calibration by "anyone" shifting a channel by +1000.
        attack = {"id": 2, "instance": "steady", "args": {"channel": "ch0", "by": "anyone", "points": [[0, 1000]]}}
        refused = _cmd(a, "calibrate", attack)
        assert not refused["ok"] and "a change command must be signed" in refused["error"], refused
        shown = _cmd(a, "calibrate", {"id": 3, "instance": "steady", "args": {"channel": "ch0", "action": "show"}})
        assert shown["ok"] and shown["result"]["active"] is None and shown["result"]["pending"] == []
        for name in ("restart", "reload"):
            unsigned = _cmd(a, name, {"id": 4, "instance": "other", "by": "mallory"})
            assert not unsigned["ok"] and "must be signed" in unsigned["error"], (name, unsigned)
        # Signed by the ops key (trusted_keys: every command), bound to this agent: runs, audited.
        restart = signed_request({"id": 5, "instance": "other"}, "restart", "t1", "ann", ops, 60)
        ok = _cmd(a, "restart", restart)
        assert ok["ok"] and ok["result"] == {"restarted": "other"}, ok
        a.sub.wait_for(lambda: any(e["outcome"] == "done" for e in _audits(a)), 10, "the audit event")
        done = next(e for e in _audits(a) if e["outcome"] == "done")
        assert done["command"] == "restart" and done["by"] == "ann" and done["kid"] == restart["kid"]
        assert done["instance"] == "other" and done["source"] == "mqtt"
        assert any(e["command"] == "calibrate" and e["outcome"].startswith("refused") for e in _audits(a))
        replay = _cmd(a, "restart", restart)
        assert not replay["ok"] and "already used" in replay["error"], replay
        # A signed ping cannot be replayed as a restart; the panel key may write, not restart.
        ping = signed_request({"id": 6, "instance": "other", "args": {"action": "x"}}, "calibrate", "t1", "b", ops, 60)
        assert not (moved := _cmd(a, "restart", ping))["ok"] and "signed for 'calibrate'" in moved["error"]
        by_panel = _cmd(a, "restart", signed_request({"id": 7, "instance": "other"}, "restart", "t1", "p", panel, 60))
        assert not by_panel["ok"] and "may not sign 'restart'" in by_panel["error"], by_panel
        other_agent = signed_request({"id": 8, "instance": "other"}, "restart", "t2", "ann", ops, 60)
        assert "is not this agent" in _cmd(a, "restart", other_agent)["error"]
        too_long = signed_request({"id": 9, "instance": "other"}, "restart", "t1", "ann", ops, 3600)
        ahead = _cmd(a, "restart", too_long)["error"]
        assert "more than 900 s ahead" in ahead and "this agent's clock reads 20" in ahead, ahead
        # The CLI signs with its key (sign_key or --sign) and says who.
        key = str(tmp_path / "ops.key")
        r = cli("cmd", "t1", "restart", "other", "--sign", key, "--by", "bob", "--url", broker.url)
        assert r.returncode == 0 and "restarted: other" in r.stdout, r.stderr
        a.sub.wait_for(lambda: any(e["by"] == "bob" for e in _audits(a)), 10, "the CLI's audit event")
    finally:
        a.close()


def test_command_classes() -> None:
    for read in ("ping", "status", "config", "capture", "captures", "capture_get", "report", "history"):
        assert command_class(read, {}) == "read"
    assert command_class("calibrate", {"action": "show"}) == "read"
    for change in ("write", "calibrate", "restart", "reload", "maintenance_done", "ack", "shelve", "sign_off", "new"):
        assert command_class(change, {}) == "change", change


def _dcmd(tag: str, datatype: DataType, value: Any) -> bytes:
    p = Payload()
    p.timestamp = 1
    m = p.metrics.add()
    m.name, m.datatype, m.timestamp = tag, int(datatype), 1
    set_value(m, datatype, value)
    return bytes(p.SerializeToString())


def test_sparkplug_dcmd_goes_through_the_same_gate(tmp_path: Path, broker: LocalBroker) -> None:
    sparkplug = '\n[sparkplug]\nenabled = true\ngroup_id = "plant"\n'
    with known_plc_server() as (port, tags, _):
        rec = Recorder(broker.url)
        a = PlcAgent(tmp_path, broker, port, tags, extra="require_signature = true" + sparkplug)
        try:

            def refusals(text: str) -> int:
                return sum(text.encode() in m.payload for m in rec.of("DDATA"))

            rec.wait_for(lambda: rec.of("DBIRTH"), 20, "DBIRTH")
            rec.client.publish("spBv1.0/plant/DCMD/t1/plc1", _dcmd("setpoint", DataType.INT64, 250), qos=1)
            rec.wait_for(lambda: refusals("cannot carry a signature"), 10, "the unsigned DCMD refused")
            # The file stops requiring signatures (SIGHUP): DCMD writes now, but never NaN.
            a.cfg.write_text(a.cfg.read_text().replace("require_signature = true", ""))
            a.proc.proc.send_signal(signal.SIGHUP)
            a.sub.wait_for(lambda: "reload:" in a.proc.log(), 10, "the reload")
            rec.client.publish("spBv1.0/plant/DCMD/t1/plc1", _dcmd("float32_ABCD_0", DataType.FLOAT, math.nan), qos=1)
            rec.wait_for(lambda: refusals("not a finite number"), 10, "the NaN DCMD refused")
            rec.client.publish("spBv1.0/plant/DCMD/t1/plc1", _dcmd("setpoint", DataType.INT64, 250), qos=1)
            a.sub.wait_for(lambda: a.setpoint() == 250, 10, "the DCMD write read back")
            audits = [m.env["d"] for m in a.sub.on("edge/t1/event/agent") if m.env["d"]["kind"] == "audit"]
            assert any(e["source"] == "sparkplug" and e["outcome"] == "done" for e in audits), audits
        finally:
            a.close()
            rec.close()


def _signed_push(version: int, key: Any) -> dict[str, Any]:
    from edge_agent.agent.ops.push import binding
    from edge_agent.agent.remote.signing import sign

    extra = {"name": f"v{version}", "plugin": "values", "interval_s": 0.5, "driver": {"type": "sim"}}
    return sign({"version": version, "config": {"instances": [extra]}, **binding("agent:t1", 60)}, key)


def test_key_rotation_with_sparkplug_on_by_sighup_and_cmd_reload(tmp_path: Path, broker: LocalBroker) -> None:
    a_key, a_pub = _keygen(tmp_path / "a.key")
    b_key, b_pub = _keygen(tmp_path / "b.key")
    trusted = tmp_path / "trusted.pub"
    trusted.write_text(Path(a_pub).read_text())
    extra = (
        f'require_signature = true\ntrusted_keys = ["{trusted}"]\n\n[sparkplug]\nenabled = true\ngroup_id = "plant"\n'
    )
    agent = RemoteAgent(tmp_path, broker, extra=extra)
    try:
        assert agent.push(_signed_push(1, a_key))["status"] == "accepted"
        # Rotate to B (A revoked) and SIGHUP: the one remote-config object, Sparkplug or not.
        trusted.write_text(Path(b_pub).read_text())
        agent.proc.proc.send_signal(signal.SIGHUP)
        agent.sub.wait_for(lambda: "reload:" in agent.proc.log(), 10, "the reload")
        revoked = agent.push(_signed_push(2, a_key))
        assert revoked["status"] == "rejected" and "not trusted" in str(revoked["errors"]), revoked
        assert agent.push(_signed_push(3, b_key))["status"] == "accepted"
        # A key file change counts at its next use, reload or not: once the file holds A again, B is refused.
        reload = signed_request({"id": "r"}, "reload", "t1", "ops", b_key, 60)
        trusted.write_text(Path(a_pub).read_text())
        answer = _cmd(agent, "reload", reload)
        assert not answer["ok"] and "may not sign" in answer["error"], "key files are read at every use"
        reload = signed_request({"id": "r2"}, "reload", "t1", "ops", a_key, 60)
        assert _cmd(agent, "reload", reload)["ok"]
        revoked = agent.push(_signed_push(4, b_key))
        assert revoked["status"] == "rejected" and "not trusted" in str(revoked["errors"]), revoked
        assert agent.push(_signed_push(5, a_key))["status"] == "accepted"
    finally:
        agent.close()


def test_the_panels_key_signs_only_what_the_file_lets_it(tmp_path: Path) -> None:
    from edge_agent.agent.config.registry import load_registry
    from edge_agent.agent.config.schema import build
    from edge_agent.agent.remote.authority import Authority, Unauthorized

    panel, panel_pub = _keygen(tmp_path / "panel.key.pem")
    remote = {"require_signature": True, "command_keys": {"ack": [panel_pub], "shelve": [panel_pub]}}
    (tmp_path / "s").mkdir()
    cfg = build({"agent": {"id": "t1", "state_dir": str(tmp_path / "s")}, "remote": remote}, load_registry())
    authority = Authority(lambda: cfg)
    # what the panel sends for a logged-in technician (agent/ops/panel/server.py: _action)
    ack = signed_request({"args": {"id": "a1", "by": "ann"}}, "ack", "t1", "ann", panel, 60)
    actor = authority.authorize("ack", ack, "mqtt")
    assert (actor.by, actor.kid) == ("ann", ack["kid"])
    with pytest.raises(Unauthorized, match="may not sign 'calibrate'"):
        authority.authorize("calibrate", signed_request({"args": {}}, "calibrate", "t1", "ann", panel, 60), "mqtt")
    with pytest.raises(Unauthorized, match="must be signed"):
        authority.authorize("ack", {"args": {"id": "a1"}, "by": "ann"}, "mqtt")


def test_an_unreadable_command_key_refuses_cleanly(tmp_path: Path) -> None:
    from edge_agent.agent.config.registry import load_registry
    from edge_agent.agent.config.schema import build
    from edge_agent.agent.remote.authority import Authority, Unauthorized

    key, _ = _keygen(tmp_path / "k.pem")
    remote = {"require_signature": True, "command_keys": {"restart": [str(tmp_path / "missing.pub")]}}
    cfg = build({"agent": {"id": "t1", "state_dir": str(tmp_path)}, "remote": remote}, load_registry())
    with pytest.raises(Unauthorized, match="is not a key"):
        Authority(lambda: cfg).authorize("restart", signed_request({}, "restart", "t1", "ann", key, 60), "mqtt")
