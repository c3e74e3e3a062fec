"""Fleet configuration against a real mosquitto and real agent processes: local precedence, bound
signatures, desired state for offline agents, proof by a good read, idempotence, patches, SIGHUP."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edge_agent.agent.devtools.local_broker import LocalBroker, free_port
from edge_agent.agent.remote.signing import TrustedKeyError, key_id, parse_public_key, sign
from support import BASE, OTHER, ROOT, STEADY, AgentProcess, Subscriber, scaled, write_config


class Agent:
    """An agent process with its own id and a subscriber on its topics."""

    def __init__(self, tmp: Path, broker: LocalBroker, agent_id: str, extra: str = "", agent_extra: str = "") -> None:
        self.id = agent_id
        self.dir = tmp / agent_id
        self.dir.mkdir(exist_ok=True)
        self.remote_extra = f"[remote]\nmin_interval_s = 0\nverify_timeout_s = {scaled(3):.1f}\n" + extra
        self.agent_extra = agent_extra
        self.cfg = self.write(BASE)
        self.broker = broker
        self.sub = Subscriber(broker.url, [f"edge/{agent_id}/#"])
        self.proc: AgentProcess | None = None

    def write(self, instances: str) -> Path:
        cfg = write_config(
            self.dir / "agent.toml",
            state_dir=self.dir / "state",
            instances=instances,
            agent_id=self.id,
            extra=self.remote_extra,
        )
        if self.agent_extra:  # extra [agent] keys go right after the [agent] table's first line
            text = cfg.read_text().replace(f'id = "{self.id}"\n', f'id = "{self.id}"\n{self.agent_extra}\n', 1)
            cfg.write_text(text)
        return cfg

    def start(self) -> Agent:
        self.proc = AgentProcess(self.cfg, self.broker.url)
        self.wait_data("steady")
        return self

    def wait_data(self, instance: str, n: int = 2) -> None:
        topic = f"edge/{self.id}/data/{instance}"
        k = len(self.sub.on(topic))
        self.sub.wait_for(lambda: len(self.sub.on(topic)) >= k + n, 20, f"{self.id}/{instance} publishing")

    def results(self) -> list[dict[str, Any]]:
        return [m.env["d"] for m in self.sub.on(f"edge/{self.id}/config/result")]

    def send(self, doc: Any, topic: str = "config/set", *, raw: bytes | None = None, retain: bool = False) -> None:
        payload = raw if raw is not None else msgpack.packb(doc)
        self.sub.client.publish(
            f"edge/{self.id}/{topic}" if "/" not in topic or topic.startswith("config") else topic,
            payload,
            qos=1,
            retain=retain,
        )

    def push(
        self, doc: Any, topic: str = "config/set", *, raw: bytes | None = None, timeout: float = 20
    ) -> dict[str, Any]:
        before = len(self.results())
        self.send(doc, topic, raw=raw)
        self.sub.wait_for(lambda: len(self.results()) > before, timeout, f"a config result from {self.id}")
        return self.results()[before]

    def state(self) -> dict[str, Any]:
        return self.sub.on(f"edge/{self.id}/config/state")[-1].env["d"]  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
        self.sub.close()


@pytest.fixture
def agents(tmp_path: Path, broker: LocalBroker) -> Any:
    made: list[Agent] = []

    def make(agent_id: str, **kw: Any) -> Agent:
        a = Agent(tmp_path, broker, agent_id, **kw)
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()


def doc(
    version: int,
    instances: list[dict[str, Any]] | None = None,
    *,
    target: str = "agent:t1",
    ttl: float = 60,
    **extra: Any,
) -> dict[str, Any]:
    """A bound document: target, version, expiry and a fresh nonce."""
    return {
        "version": version,
        "config": {"instances": [STEADY] if instances is None else instances},
        "target": target,
        "expires": int(time.time() + ttl),
        "nonce": base64.urlsafe_b64encode(os.urandom(12)).decode(),
        **extra,
    }


def pub_b64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def test_local_file_keeps_security_settings_after_a_push(agents: Any) -> None:
    a = agents("t1").start()
    added = {"name": "added", "plugin": "values", "interval_s": 0.2, "driver": {"type": "sim"}}
    assert a.push(doc(2, [added]))["status"] == "accepted"
    a.stop()
    key = Ed25519PrivateKey.generate()
    a.remote_extra += f'require_signature = true\ntrusted_keys = ["{pub_b64(key)}"]\n'
    a.write(BASE)  # exactly what keygen says, then a restart
    a.start()
    a.wait_data("added")  # the pushed layer still runs on top of the file
    unsigned = a.push(doc(3, [added]))
    assert unsigned["status"] == "rejected" and unsigned["errors"][0].startswith("sig: a signature is required")
    assert a.push(sign(doc(3, []), key))["status"] == "accepted", "a signed push is taken"
    assert sorted(a.state()["instances"]) == ["other", "steady"] and a.state()["version"] == 3


def test_signatures_are_bound_to_agent_expiry_and_nonce(agents: Any) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    trust = f'require_signature = true\ntrusted_keys = ["{pub_b64(old)}", "{pub_b64(new)}"]\n'
    t1 = agents("t1", extra=trust).start()
    t2 = agents("t2", extra=trust).start()
    good = sign(doc(5), old)
    raw = msgpack.packb(good)
    assert t1.push(None, raw=raw)["status"] == "accepted"
    replay_other = t2.push(None, raw=raw)
    assert replay_other["status"] == "rejected" and replay_other["errors"][0].startswith(
        "target: 'agent:t1' is not this agent"
    )
    replay_twice = t1.push(None, raw=raw)
    assert replay_twice["status"] == "rejected" and "already used" in replay_twice["errors"][0]
    expired = t1.push(sign(doc(6, ttl=-5), old))
    assert expired["status"] == "rejected" and expired["errors"][0].startswith("expires: the document expired")
    for missing in ("target", "expires", "nonce"):
        d = doc(6)
        del d[missing]
        assert t1.push(sign(d, old))["errors"] == [
            f"{missing}: required in a signed push (remote.require_signature = true)"
        ]
    rotated = t1.push(sign(doc(6, [STEADY, {**OTHER, "interval_s": 0.3}]), new))  # the second trusted key
    assert rotated["status"] == "accepted", rotated
    forged = sign(doc(7), Ed25519PrivateKey.generate())
    assert "is not trusted by this agent" in t1.push(forged)["errors"][0]


def test_a_push_must_prove_a_good_read(agents: Any) -> None:
    a = agents("t1", extra='push_hosts = ["127.0.0.1"]\n').start()  # the file lets pushes reach local PLCs
    closed = free_port()
    plc = {
        "name": "plc",
        "plugin": "plc",
        "interval_s": 0.5,
        "driver": {
            "type": "modbus",
            "host": "127.0.0.1",
            "port": closed,
            "timeout_s": 0.2,
            "retries": 0,
            "tags": [{"name": "p", "table": "holding_register", "address": 0, "type": "uint16"}],
        },
    }
    answer = a.push(doc(2, [plc], check_s=2))
    assert answer["status"] == "rolled_back" and "'plc'" in answer["reason"], answer
    failing = {**OTHER, "name": "failing", "driver": {"type": "sim", "fail_reads": list(range(1, 200))}}
    answer = a.push(doc(3, [failing], check_s=2))
    assert answer["status"] == "rolled_back", answer
    assert "no good-quality value within 2 s" in answer["reason"] and "quality" in answer["reason"]
    state = a.state()
    assert sorted(state["instances"]) == ["other", "steady"] and state["version"] == 0
    assert state["last_result"]["status"] == "rolled_back"


def test_idempotence_force_and_patches(agents: Any) -> None:
    a = agents("t1").start()
    added = {"name": "added", "plugin": "values", "interval_s": 0.2, "driver": {"type": "sim"}}
    first = a.push(doc(4, [added], id="x1"))
    assert first["status"] == "accepted" and first["id"] == "x1"
    again = a.push(doc(4, [added], id="x2"))
    assert again == {**again, "status": "already_applied", "version": 4, "id": "x2"}
    other_content = a.push(doc(4, []))
    assert other_content["status"] == "rejected" and "already applied with other content" in other_content["errors"][0]
    forced = a.push(doc(4, [added], force=True))
    assert forced["status"] == "accepted" and forced["instances"]["changed"] == ["added"]
    patch = {k: v for k, v in doc(5).items() if k != "config"}
    extra = {"name": "extra", "plugin": "values", "interval_s": 0.2, "driver": {"type": "sim", "profile": "square"}}
    patched = a.push({**patch, "patch": {"set": [extra]}})
    assert patched["status"] == "accepted" and patched["instances"]["added"] == ["extra"]
    removed = a.push({**patch, "version": 6, "nonce": "n-remove-added", "patch": {"remove": ["added"]}})
    assert removed["instances"]["removed"] == ["added"], removed
    bad = a.push({**patch, "version": 7, "nonce": "n-remove-file", "patch": {"remove": ["other"]}})
    assert bad["errors"] == [
        "patch.remove[0]: 'other' comes from the local file; to stop it remotely, set it with enabled = false"
    ]
    assert sorted(a.state()["instances"]) == ["extra", "other", "steady"] and a.state()["version"] == 6
    stored = a.dir / "state" / "applied-config.json"
    checked = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", "check-config", str(stored)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert checked.returncode == 0 and "ok (pushed layer version 6: 1 instance(s))" in checked.stdout, checked.stdout


def test_desired_state_reaches_an_agent_that_was_offline(agents: Any) -> None:
    a = agents("t1", agent_extra='groups = ["line1"]')
    offline_topic = "edge/t1/config/desired"
    added = {"name": "added", "plugin": "values", "interval_s": 0.2, "driver": {"type": "sim"}}
    a.sub.client.publish(offline_topic, msgpack.packb(doc(8, [added], id="d8")), qos=1, retain=True)
    group_doc = doc(7, [], target="group:line1")  # older: the agent's own v8 wins
    a.sub.client.publish("edge/group/line1/config/desired", msgpack.packb(group_doc), qos=1, retain=True)
    a.start()
    a.wait_data("added")
    a.sub.wait_for(lambda: [r for r in a.results() if r.get("id") == "d8"], 10, "the desired result")
    assert a.state()["version"] == 8 and a.state()["desired_version"] == 8
    newer = doc(9, [], target="group:line1", id="g9")
    a.sub.client.publish("edge/group/line1/config/desired", msgpack.packb(newer), qos=1, retain=True)
    a.sub.wait_for(lambda: [r for r in a.results() if r.get("id") == "g9"], 10, "the group result")
    assert a.state()["version"] == 9 and "added" not in a.state()["instances"]
    n = len(a.results())
    a.stop()
    a.start()  # the retained desired documents come again: nothing to do, nothing said
    time.sleep(1.0)
    assert len(a.results()) == n and a.state()["version"] == 9


def test_sighup_reloads_the_file_under_the_pushed_layer(agents: Any) -> None:
    a = agents("t1").start()
    assert a.push(doc(2, [STEADY, {**OTHER, "interval_s": 0.3}]))["status"] == "accepted"
    third = '\n[[instances]]\nname = "third"\nplugin = "values"\ninterval_s = 0.2\ndriver = { type = "sim" }\n'
    a.write(BASE.replace('profile = "square"', 'profile = "sine"') + third)
    assert a.proc is not None
    a.proc.proc.send_signal(signal.SIGHUP)
    a.wait_data("third")
    a.sub.wait_for(
        lambda: "file changes to other are overridden by the pushed config version 2" in a.proc.log(),  # type: ignore[union-attr]
        5,
        "the override warning naming the instance",
    )
    st = a.state()
    assert (
        st["instances"]["third"]["managed_by"] == "file"
        and st["instances"]["other"]["managed_by"] == "push (overrides file)"
    )


@pytest.mark.slow
def test_keygen_public_key_file_is_a_trusted_key(tmp_path: Path) -> None:
    """Issue 20 item 2: the .pub file keygen writes is accepted; a bad entry names the formats."""
    key = tmp_path / "ops.key"
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", "keygen", str(key)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    kid, _ = parse_public_key(str(key) + ".pub")
    b64 = (tmp_path / "ops.key.pub").read_text().strip()
    assert parse_public_key(b64)[0] == kid and kid in out
    assert kid == key_id(base64.b64decode(b64))
    (tmp_path / "bad.pub").write_text("not a key\n")
    with pytest.raises(TrustedKeyError, match="accepted: base64 of the 32-byte raw key"):
        parse_public_key(str(tmp_path / "bad.pub"))


def test_run_does_not_claim_a_remote_config_when_none_is_applied(tmp_path: Path, broker: LocalBroker) -> None:
    """Issue 20 item 3: ``run -c ./c.toml`` with no push applied says nothing about one."""
    write_config(tmp_path / "c.toml", state_dir=tmp_path / "state", instances=BASE)
    log = tmp_path / "run.log"
    env = {**os.environ, "EDGE_AGENT_MQTT_URL": broker.url, "PYTHONPATH": str(ROOT / "tests")}
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.agent", "run", "-c", "./c.toml"],
            cwd=tmp_path,
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + scaled(20)
        while "connected to" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    text = log.read_text()
    assert "connected to" in text
    assert "remotely applied" not in text and "pushed config" not in text
