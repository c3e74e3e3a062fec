"""The ops side against mosquitto with the shipped password + ACL setup (deploy/mosquitto): the
CLI logs in (URL, flags, environment, CLI config file), pushes in waves, names every agent's result
(accepted, already applied, pending because offline, unknown id), and the ACL keeps agents apart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import paho.mqtt.client as mqtt
import pytest
from edge_agent.agent.devtools.local_broker import free_port, wait_port
from paho.mqtt.enums import CallbackAPIVersion
from support import BASE, ROOT, AgentProcess, cli, scaled, write_config

USERS = ("ops", "t1", "t2", "t3", "scada", "panel")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("mosquitto_passwd"), reason="mosquitto_passwd not installed"),
]


class AclBroker:
    """mosquitto with deploy/mosquitto/acl and a password file of USERS (password = user + '-pw')."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.dir = tmp / "broker"
        self.dir.mkdir()
        passwd = self.dir / "passwd"
        passwd.touch(mode=0o600)
        for u in USERS:
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), u, f"{u}-pw"], check=True)
            (tmp / f"{u}.pass").write_text(f"{u}-pw\n")
        shutil.copy(ROOT / "deploy" / "mosquitto" / "acl", self.dir / "acl")
        conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
        conf = conf.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        conf = conf.replace("/etc/mosquitto/edge-agent.passwd", str(passwd)).replace(
            "/etc/mosquitto/edge-agent.acl", str(self.dir / "acl")
        )
        conf = conf.replace("persistence true", "persistence false")
        if os.geteuid() == 0:  # as root mosquitto would switch to its own user, who cannot read tmp
            conf += "user root\n"
        (self.dir / "mosquitto.conf").write_text(conf)
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.dir / "mosquitto.conf")], stderr=subprocess.DEVNULL)
        assert wait_port(self.port), "mosquitto with the ACL did not start"
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[AclBroker]:
    b = AclBroker(tmp_path)
    try:
        yield b
    finally:
        b.close()


def start_agent(tmp: Path, broker: AclBroker, agent_id: str, groups: str = "", remote: str = "") -> AgentProcess:
    d = tmp / agent_id
    d.mkdir(exist_ok=True)
    extra = f'username = "{agent_id}"\npassword_file = "{tmp / (agent_id + ".pass")}"\n'
    extra += f'[remote]\nmin_interval_s = 0\nverify_timeout_s = {scaled(3):.1f}\npush_hosts = ["127.0.0.1"]\n' + remote
    cfg = write_config(d / "agent.toml", state_dir=d / "state", instances=BASE, agent_id=agent_id, extra=extra)
    if groups:
        cfg.write_text(cfg.read_text().replace(f'id = "{agent_id}"\n', f'id = "{agent_id}"\ngroups = [{groups}]\n'))
    return AgentProcess(cfg, broker.url)


def wait_online(url_args: list[str], ids: list[str], timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = cli("fleet", "--json", "--wait", "1.5", *url_args)
        if r.returncode == 0:
            inv = json.loads(r.stdout)
            if all(any(a["id"] == i and a["online"] for a in inv) for i in ids):
                return inv  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"agents {ids} not online: {r.stdout} {r.stderr}")


class Spy:
    """A paho client logged in as some user, recording what it receives."""

    def __init__(self, broker: AclBroker, user: str, topics: list[str]) -> None:
        self.got: list[str] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.c.username_pw_set(user, f"{user}-pw")
        self.c.on_message = lambda c, u, m: self.got.append(m.topic)
        self.c.on_connect = lambda c, u, f, rc, p=None: [c.subscribe(t, qos=1) for t in topics]
        self.c.connect("127.0.0.1", broker.port)
        self.c.loop_start()
        time.sleep(0.3)

    def publish(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_ops_fleet_against_mosquitto_with_passwords_and_acl(tmp_path: Path, acl_broker: AclBroker) -> None:
    ops = ["--url", acl_broker.url, "--username", "ops", "--password-file", str(tmp_path / "ops.pass")]
    t1 = start_agent(tmp_path, acl_broker, "t1", groups='"line1"')
    t2 = start_agent(tmp_path, acl_broker, "t2", groups='"line1"')
    t3 = start_agent(tmp_path, acl_broker, "t3")
    spy = Spy(acl_broker, "t2", ["edge/t1/#", "edge/+/config/set"])
    try:
        inv = wait_online(ops, ["t1", "t2", "t3"])
        assert {a["id"] for a in inv} == {"t1", "t2", "t3"}
        t3.stop()  # t3 is offline during the push: its result is "pending", it catches up later
        push_file = tmp_path / "push.toml"
        push_file.write_text(
            '[[instances]]\nname = "added"\nplugin = "values"\ninterval_s = 0.2\ndriver = { type = "sim" }\n'
        )
        r = cli("push-config", str(push_file), "--agent", "t*", "--agent", "nosuch", "--wave", "1", "--json", *ops)
        out = json.loads(r.stdout)
        res = out["results"]
        assert res["t1"]["status"] == res["t2"]["status"] == "accepted", r.stdout + r.stderr
        assert res["t3"]["status"] == "pending" and "offline" in res["t3"]["reason"]
        assert res["nosuch"]["status"] == "unknown_id"
        assert r.returncode == 1, "an unknown id fails the command"
        version = out["version"]
        offline = {a["id"]: a for a in json.loads(cli("fleet", "--json", "--wait", "1.5", *ops).stdout)}["t3"]
        assert not offline["online"] and offline["desired_version"] == version and offline["drift"], offline
        again = cli("push-config", str(push_file), "--agent", "t1", "--version", str(version), *ops)
        assert again.returncode == 0 and "already applied" in again.stdout, again.stdout + again.stderr
        # the ACL: t2 saw none of t1's pushes or data, and its own push to t1 never arrives
        assert not [t for t in spy.got if t.startswith("edge/t1/")], spy.got
        forged = {"version": version + 5, "config": {"instances": []}, "id": "forged"}
        spy.publish("edge/t1/config/set", msgpack.packb(forged))
        t3 = start_agent(tmp_path, acl_broker, "t3")
        deadline = time.monotonic() + scaled(30)
        while time.monotonic() < deadline:
            inv = {a["id"]: a for a in json.loads(cli("fleet", "--json", "--wait", "1.5", *ops).stdout)}
            if inv["t3"]["online"] and inv["t3"]["version"] == version:
                break
            time.sleep(0.5)
        assert inv["t3"]["version"] == version and not inv["t3"]["drift"], inv["t3"]
        assert inv["t1"]["version"] == version, "the forged push from another agent never arrived"
        hashes = {inv[a]["instances_hash"] for a in ("t1", "t2", "t3")}
        assert len(hashes) == 1, "the instances_hash does not depend on the agent id"
        # a failure threshold stops the rollout: wave 1 rolls back, the other waves are not pushed
        dead = tmp_path / "dead.toml"
        dead.write_text(
            '[[instances]]\nname = "plc"\nplugin = "plc"\ninterval_s = 0.5\n'
            'driver = { type = "modbus", host = "127.0.0.1", port = 1, timeout_s = 0.2, retries = 0, '
            'tags = [{ name = "p", table = "holding_register", address = 0, type = "uint16" }] }\n'
        )
        r = cli("push-config", str(dead), "--agent", "t*", "--patch", "--wave", "1", "--check-s", "1", "--json", *ops)
        res = json.loads(r.stdout)["results"]
        assert r.returncode == 1 and res["t1"]["status"] == "rolled_back", r.stdout
        assert res["t2"]["status"] == res["t3"]["status"] == "not_pushed", res
        assert "rollout stopped after 1 failure(s)" in res["t3"]["reason"]
        got = cli("get-config", "t1", *ops)
        assert got.returncode == 0 and '# managed by: push\n[[instances]]\nname = "added"' in got.stdout, got.stdout
        assert "[mqtt]" in got.stdout and '# managed by: file\n[[instances]]\nname = "steady"' in got.stdout
        assert tomllib.loads(got.stdout)["instances"][-1]["name"] == "added", "the output is valid TOML"
        ping = cli("cmd", "t2", "ping", *ops)
        assert ping.returncode == 0 and ping.stdout.startswith("pong (up "), ping.stdout
        bare = cli("cmd", "t2", "restart", *ops)
        assert bare.returncode == 1 and "restart needs an instance" in bare.stderr
        offline = cli("cmd", "nosuch", "ping", "--timeout", "1", *ops)
        assert offline.returncode == 1 and "unknown agent 'nosuch'" in offline.stderr
    finally:
        spy.close()
        for a in (t1, t2, t3):
            a.kill()


def test_cli_login_from_url_env_and_file_and_one_line_errors(tmp_path: Path, acl_broker: AclBroker) -> None:
    url = acl_broker.url
    anonymous = cli("tail", "--url", url, "--seconds", "1")
    assert anonymous.returncode == 2 and anonymous.stderr.count("\n") == 1
    assert "refused the connection (no user name given" in anonymous.stderr
    wrong = cli("fleet", "--url", url.replace("//", "//ops:nope@"))
    assert (
        wrong.returncode == 1
        and "refused the connection as 'ops': " in wrong.stderr
        and "Traceback" not in wrong.stderr
    )
    from_url = cli("fleet", "--json", "--url", url.replace("//", "//ops:ops-pw@"), "--wait", "1")
    assert from_url.returncode == 0, from_url.stderr
    env = {
        "EDGE_AGENT_MQTT_URL": url,
        "EDGE_AGENT_MQTT_USERNAME": "ops",
        "EDGE_AGENT_MQTT_PASSWORD_FILE": str(tmp_path / "ops.pass"),
    }
    assert cli("fleet", "--json", "--wait", "1", env=env).returncode == 0
    conf = tmp_path / "cli.toml"
    conf.write_text(f'[mqtt]\nurl = "{url}"\nusername = "ops"\npassword_file = "{tmp_path / "ops.pass"}"\n')
    assert cli("fleet", "--json", "--wait", "1", env={"EDGE_AGENT_CLI_CONFIG": str(conf)}).returncode == 0
    conf.write_text("[mqtt\nurl = 1")
    bad_conf = cli("fleet", env={"EDGE_AGENT_CLI_CONFIG": str(conf)})
    assert bad_conf.returncode == 1 and bad_conf.stderr.startswith(f"fleet: {conf}: not a readable TOML file")
    bad_push = tmp_path / "bad.toml"
    bad_push.write_text("[[instances]\n")
    r = cli("push-config", str(bad_push), "--agent", "t1", "--url", url)
    assert r.returncode == 1 and r.stderr.startswith(f"{bad_push}: cannot read:") and "Traceback" not in r.stderr
    sections = tmp_path / "sections.toml"
    sections.write_text('[mqtt]\nurl = "mqtt://elsewhere:1883"\n')
    r = cli("push-config", str(sections), "--agent", "t1", "--url", url)
    assert r.returncode == 1 and "mqtt: [mqtt] comes from each agent's local file" in r.stderr
    # a foreign retained payload under the prefix is skipped with a warning
    spy = Spy(acl_broker, "ops", [])
    spy.c.publish("edge/zz/status", b"not msgpack at all", qos=1, retain=True).wait_for_publish(5)
    spy.close()
    r = cli("fleet", "--json", "--wait", "1", env=env)
    assert r.returncode == 0 and "warning: skipping edge/zz/status: not an edge-agent message" in r.stderr


def test_sparkplug_through_the_shipped_acl(tmp_path: Path, acl_broker: AclBroker) -> None:
    """An agent publishes Sparkplug as its own edge node and reads its commands; the SCADA user
    sees it and can ask for a rebirth (deploy/mosquitto/acl, docs/sparkplug.md)."""
    from edge_agent.agent.sparkplug.payload import DataType, Payload, set_value

    scada = Spy(acl_broker, "scada", ["spBv1.0/#"])
    d = tmp_path / "t1"
    d.mkdir()
    extra = (
        f'username = "t1"\npassword_file = "{tmp_path / "t1.pass"}"\n[sparkplug]\nenabled = true\ngroup_id = "plant"\n'
    )
    agent = AgentProcess(
        write_config(d / "agent.toml", state_dir=d / "state", instances=BASE, extra=extra), acl_broker.url
    )
    try:
        deadline = time.monotonic() + scaled(20)
        while "spBv1.0/plant/DDATA/t1/steady" not in scada.got and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "spBv1.0/plant/NBIRTH/t1" in scada.got and "spBv1.0/plant/DBIRTH/t1/steady" in scada.got, scada.got[:5]
        p = Payload()
        m = p.metrics.add()
        m.name, m.datatype, m.timestamp = "Node Control/Rebirth", int(DataType.BOOLEAN), 1
        set_value(m, DataType.BOOLEAN, True)
        scada.publish("spBv1.0/plant/NCMD/t1", p.SerializeToString())
        while scada.got.count("spBv1.0/plant/NBIRTH/t1") < 2 and time.monotonic() < deadline + 10:
            time.sleep(0.1)
        assert scada.got.count("spBv1.0/plant/NBIRTH/t1") == 2, "the agent did not receive NCMD through the ACL"
    finally:
        assert agent.stop() == 0
        scada.close()


def test_cmd_save_writes_byte_fields(tmp_path: Path) -> None:
    from edge_agent.agent.ops.fleet import save_fields

    lines = save_fields({"png": b"\x89PNG", "rows": 24}, [f"png={tmp_path / 'f.png'}"])
    assert (tmp_path / "f.png").read_bytes() == b"\x89PNG" and "4 bytes" in lines[0]
    with pytest.raises(SystemExit, match="no bytes field 'rows'"):
        save_fields({"rows": 24}, [f"rows={tmp_path / 'x'}"])
    with pytest.raises(SystemExit, match="KEY=FILE"):
        save_fields({}, ["png"])


def _inventory(ops: list[str]) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in json.loads(cli("fleet", "--json", "--wait", "1.5", *ops).stdout)}


def _converged(ops: list[str], agent: str, version: int, timeout: float = 30) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inv = _inventory(ops)
        if inv.get(agent, {}).get("online") and inv[agent]["version"] == version:
            return inv
        time.sleep(0.5)
    raise AssertionError(f"{agent} did not converge to {version}: {inv.get(agent)}")


INST = '[[instances]]\nname = "{}"\nplugin = "values"\ninterval_s = 0.2\ndriver = {{ type = "sim" }}\n'


def test_desired_state_is_a_state_offline_patch_and_reimage(tmp_path: Path, acl_broker: AclBroker) -> None:
    """The issue's runs: a full push and a patch while an agent is offline leave it the same set an
    online agent runs; a version names one content; a rejected push is never retained, so a re-imaged
    agent (empty state dir) comes back running the accepted set, with no drift."""
    ops = ["--url", acl_broker.url, "--username", "ops", "--password-file", str(tmp_path / "ops.pass")]
    t1 = start_agent(tmp_path, acl_broker, "t1")
    t2 = start_agent(tmp_path, acl_broker, "t2")
    try:
        wait_online(ops, ["t1", "t2"])
        t2.stop()
        (tmp_path / "a.toml").write_text(INST.format("a"))
        (tmp_path / "b.toml").write_text(INST.format("b"))
        full = json.loads(cli("push-config", str(tmp_path / "a.toml"), "--agent", "t*", "--json", *ops).stdout)
        assert [full["results"][a]["status"] for a in ("t1", "t2")] == ["accepted", "pending"], full
        r = cli("push-config", str(tmp_path / "b.toml"), "--agent", "t*", "--patch", "--json", *ops)
        patch = json.loads(r.stdout)
        assert [patch["results"][a]["status"] for a in ("t1", "t2")] == ["accepted", "pending"], r.stdout + r.stderr
        inv = _inventory(ops)
        assert inv["t2"]["drift"] and inv["t2"]["why"].startswith("pending: offline"), inv["t2"]
        t2 = start_agent(tmp_path, acl_broker, "t2")
        inv = _converged(ops, "t2", patch["version"])
        assert not inv["t2"]["drift"] and not inv["t1"]["drift"], inv
        assert inv["t1"]["pushed_hash"] == inv["t2"]["pushed_hash"] == inv["t2"]["desired_hash"]
        assert inv["t1"]["instances_hash"] == inv["t2"]["instances_hash"], "both run a and b on top of the file"
        # a version names one content: the tool refuses other content under a retained version
        v = patch["version"]
        other = cli("push-config", str(tmp_path / "a.toml"), "--agent", "t1", "--version", str(v), *ops)
        assert other.returncode == 1 and "retained with other content" in other.stderr, other.stdout + other.stderr
        # a document the agent rejects (a plugin nobody has) is answered, never retained
        (tmp_path / "bad.toml").write_text(INST.format("x").replace('"values"', '"no_such_plugin"'))
        bad = cli("push-config", str(tmp_path / "bad.toml"), "--agent", "t1", "--json", *ops)
        assert json.loads(bad.stdout)["results"]["t1"]["status"] == "rejected", bad.stdout
        inv = _inventory(ops)
        assert not inv["t1"]["drift"] and inv["t1"]["desired_version"] == v, inv["t1"]
        assert inv["t1"]["results"][-1]["status"] == "rejected", "the history keeps the rejection"
        # re-imaged: an empty state dir, the retained desired document is all it gets
        t1.stop()
        shutil.rmtree(tmp_path / "t1" / "state")
        t1 = start_agent(tmp_path, acl_broker, "t1")
        inv = _converged(ops, "t1", v)
        assert not inv["t1"]["drift"] and inv["t1"]["pushed_hash"] == inv["t2"]["pushed_hash"], inv["t1"]
    finally:
        t1.kill()
        t2.kill()


def _keypair(tmp: Path, name: str) -> tuple[Path, str]:
    """(private key file, key id) made with edge-agent keygen."""
    r = cli("keygen", str(tmp / name))
    assert r.returncode == 0, r.stderr
    return tmp / name, r.stdout.split("(key id ")[1].split(")")[0]


def test_group_joiner_after_key_rotation_with_resign(tmp_path: Path, acl_broker: AclBroker) -> None:
    """A group document reaches a member that joins after a key rotation once `fleet resign` signed
    it with the new key; until then fleet says why (key not trusted). cmd answers "unknown agent" at
    once; tail shows desired documents decoded."""
    ops = ["--url", acl_broker.url, "--username", "ops", "--password-file", str(tmp_path / "ops.pass")]
    old, old_kid = _keypair(tmp_path, "old.key")
    new, new_kid = _keypair(tmp_path, "new.key")
    both = f'require_signature = true\ntrusted_keys = ["{old}.pub", "{new}.pub"]\n'
    t1 = start_agent(tmp_path, acl_broker, "t1", groups='"line2"', remote=both)
    t2 = start_agent(tmp_path, acl_broker, "t2", groups='"line2"', remote=both)
    t3: AgentProcess | None = None
    try:
        wait_online(ops, ["t1", "t2"])
        (tmp_path / "a.toml").write_text(INST.format("a"))
        r = cli("push-config", str(tmp_path / "a.toml"), "--group", "line2", "--sign", str(old), "--json", *ops)
        pushed = json.loads(r.stdout)
        assert {x["status"] for x in pushed["results"].values()} == {"accepted"}, r.stdout + r.stderr
        inv = _inventory(ops)
        assert sorted(inv["t1"]["trusted_keys"]) == sorted([old_kid, new_kid]), inv["t1"]
        # a new Pi set up after the rotation trusts only the new key, and joins line2
        t3 = start_agent(tmp_path, acl_broker, "t3", groups='"line2"', remote=both.replace(f'"{old}.pub", ', ""))
        wait_online(ops, ["t3"])
        inv = _inventory(ops)
        assert inv["t3"]["drift"] and inv["t3"]["desired_from"] == "group:line2", inv["t3"]
        assert inv["t3"]["why"].startswith("rejected") or inv["t3"]["why"].startswith("key not trusted"), inv["t3"]
        r = cli("fleet", "resign", "--sign", str(new), *ops)
        assert r.returncode == 0 and "re-signed 3 retained desired document(s)" in r.stdout, r.stdout + r.stderr
        inv = _converged(ops, "t3", pushed["version"])
        assert not any(a["drift"] for a in inv.values()), inv
        assert inv["t3"]["pushed_hash"] == inv["t1"]["pushed_hash"] == inv["t3"]["desired_hash"]
        # the agents that ran it were not disturbed: their last answers are still the push
        assert [x["status"] for x in inv["t1"]["results"]] == ["accepted"], inv["t1"]["results"]
        unknown = cli("cmd", "nosuch", "ping", "--timeout", "30", *ops)
        assert unknown.returncode == 1 and "unknown agent 'nosuch'" in unknown.stderr, unknown.stderr
        assert "no answer within" not in unknown.stderr, "told from the retained status, before any timeout"
        shown = cli("tail", "edge/group/+/config/desired", "--count", "1", "--seconds", "5", *ops)
        doc = json.loads(shown.stdout.splitlines()[0])["doc"]
        assert doc["target"] == "group:line2" and doc["kid"] == new_kid and "expires" not in doc, doc
        # a later push to every member moves the group's document too: a later joiner gets what they run
        (tmp_path / "b.toml").write_text(INST.format("b"))
        r = cli("push-config", str(tmp_path / "b.toml"), "--agent", "t*", "--sign", str(new), "--json", *ops)
        assert r.returncode == 0, r.stdout + r.stderr
        shown = cli("tail", "edge/group/line2/config/desired", "--count", "1", "--seconds", "5", *ops)
        doc = json.loads(shown.stdout.splitlines()[0])["doc"]
        assert doc["version"] == json.loads(r.stdout)["version"] and doc["config"]["instances"][0]["name"] == "b"
    finally:
        for a in (t1, t2, t3):
            if a is not None:
                a.kill()


def test_the_panel_user_reads_and_acknowledges_but_cannot_push_or_write(tmp_path: Path, acl_broker: AclBroker) -> None:
    """deploy/mosquitto/acl, user panel (issue 26): least privilege for the technician's panel."""
    ops = Spy(acl_broker, "ops", ["edge/#"])
    panel = Spy(acl_broker, "panel", ["edge/+/alarms", "edge/+/data/+", "edge/+/config/set", "edge/+/calibration/+/+"])
    try:
        agent = Spy(acl_broker, "t1", [])
        agent.publish("edge/t1/alarms", b"list")  # an agent may publish its alarm list ...
        agent.publish("edge/t1/audit", b"log")  # ... and its audit trail
        agent.publish("edge/t1/calibration/tc/motor_de", b"record")  # ... and a channel's calibration
        agent.close()
        for topic in ("edge/t1/cmd/ack", "edge/t1/cmd/maintenance_done", "edge/t1/cmd/history"):
            panel.publish(topic, b"{}")
        for topic in ("edge/t1/config/set", "edge/t1/cmd/write", "edge/t1/cmd/restart", "edge/t1/config/desired"):
            panel.publish(topic, b"{}")  # refused by the broker: never delivered
        ops.publish("edge/t1/config/set", b"{}")  # the panel may not even read pushes
        time.sleep(1.0)
        assert {"edge/t1/alarms", "edge/t1/audit", "edge/t1/cmd/ack", "edge/t1/cmd/maintenance_done"} <= set(ops.got)
        assert not {"edge/t1/cmd/write", "edge/t1/cmd/restart", "edge/t1/config/desired"} & set(ops.got)
        assert ops.got.count("edge/t1/config/set") == 1  # the ops one only
        assert "edge/t1/alarms" in panel.got and "edge/t1/config/set" not in panel.got
        assert "edge/t1/calibration/tc/motor_de" in panel.got  # the calibration page lists the records
    finally:
        ops.close()
        panel.close()


def test_a_result_its_config_state_contradicts_is_flagged_and_not_retained(
    tmp_path: Path, acl_broker: AclBroker
) -> None:
    """A compromised agent answers `accepted` for itself (the ACL lets it write its own result);
    push-config checks the agent's retained config/state, flags the answer and does not retain."""
    from edge_agent.agent.messaging import codec

    ops = ["--url", acl_broker.url, "--username", "ops", "--password-file", str(tmp_path / "ops.pass")]
    liar = Spy(acl_broker, "t2", ["edge/t2/config/set"])
    now = int(time.time() * 1000)

    def say(topic: str, d: dict[str, Any], retain: bool = False) -> None:
        liar.c.publish(topic, codec.encode(d, ts_ms=now, seq=1), qos=1, retain=retain).wait_for_publish(5)

    def on_push(c: Any, u: Any, m: Any) -> None:
        doc = msgpack.unpackb(m.payload)
        say("edge/t2/config/result", {"status": "accepted", "version": doc["version"], "id": doc["id"], "agent": "t2"})

    try:
        say("edge/t2/status", {"state": "online", "version": "0.9.9", "config_version": 0}, retain=True)
        say("edge/t2/config/state", {"version": 0, "pushed_hash": "0" * 16, "instances": {}}, retain=True)
        liar.c.on_message = on_push
        (tmp_path / "a.toml").write_text(INST.format("a"))
        r = cli("push-config", str(tmp_path / "a.toml"), "--agent", "t2", "--timeout", "10", *ops)
        assert r.returncode == 1 and "NOT CONFIRMED" in r.stdout and "config/state says version 0" in r.stdout, r.stdout
        shown = cli("tail", "edge/t2/config/desired", "--seconds", "1.5", *ops)
        assert shown.stdout.strip() == "", "nothing retained for an answer its own state contradicts"
    finally:
        liar.close()
