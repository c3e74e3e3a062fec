"""Remote configuration over MQTT against a real mosquitto and a real agent process."""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edge_agent.agent.config.layers import APPLIED_FILE
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.remote.signing import sign
from support import OTHER, STEADY, AgentProcess, RemoteAgent, scaled


def bound(version: int, config: dict[str, Any], target: str = "agent:t1", ttl: float = 60) -> dict[str, Any]:
    """A push bound to its target, version, expiry and a fresh nonce."""
    return {
        "version": version,
        "config": config,
        "target": target,
        "expires": int(time.time() + ttl),
        "nonce": base64.urlsafe_b64encode(os.urandom(12)).decode(),
    }


def _seqs(a: RemoteAgent, topic: str) -> list[int]:
    return [m.env["seq"] for m in a.sub.on(topic)]


def test_accepted_push_swaps_only_what_changed(agent: RemoteAgent) -> None:
    added = {"name": "added", "plugin": "values", "interval_s": 0.2, "driver": {"type": "sim"}}
    changed = {**OTHER, "interval_s": 0.25}
    answer = agent.push({"version": 2, "id": "p1", "config": {"instances": [STEADY, changed, added]}})
    assert answer["status"] == "accepted", answer
    assert answer["id"] == "p1" and answer["version"] == 2
    assert answer["instances"] == {"added": ["added"], "changed": ["other"], "removed": [], "unchanged": ["steady"]}
    agent.sub.wait_for(lambda: agent.sub.on("edge/t1/data/added"), 5, "the added instance publishing")
    answer = agent.push({"version": 3, "config": {"instances": [STEADY]}})
    # the pushed layer now holds only steady: "added" goes, "other" is the file's again
    assert answer["instances"]["removed"] == ["added"] and answer["instances"]["changed"] == ["other"]
    time.sleep(0.5)
    seqs = _seqs(agent, "edge/t1/data/steady")
    assert seqs == list(range(1, len(seqs) + 1)), "the untouched instance has no gap"
    ts = [m.env["ts"] for m in agent.sub.on("edge/t1/data/steady")]
    assert max(b - a for a, b in itertools.pairwise(ts)) < 250, "and kept its cadence"
    state = agent.sub.on("edge/t1/config/state")[-1].env["d"]
    assert state["version"] == 3 and sorted(state["instances"]) == ["other", "steady"]
    assert state["instances"]["other"]["managed_by"] == "file"
    assert state["instances"]["steady"]["managed_by"] == "push (overrides file)"
    applied = json.loads((agent.tmp / "state" / APPLIED_FILE).read_text())
    assert applied["version"] == 3 and len(applied["instances"]) == 1
    assert not {"agent", "mqtt", "remote", "spool"} & set(applied), "the stored push holds no sections"


def test_rejected_push_lists_every_error_and_changes_nothing(agent: RemoteAgent) -> None:
    bad = [
        {"name": "a", "plugin": "values", "interval_s": -1, "driver": {"type": "sim", "channels": "x"}},
        {"name": "b", "plugin": "nope"},
        {"name": "a", "plugin": "system", "options": {"zzz": 1}},
    ]
    answer = agent.push({"version": 5, "id": 7, "config": {"instances": bad}})
    assert answer["status"] == "rejected" and answer["id"] == 7
    assert answer["errors"] == [
        'instances["a"].interval_s: expected a number > 0, got -1',
        'instances["a"].driver.channels: expected an integer, got "x"',
        answer["errors"][2],
        'instances[2].name: duplicate instance name "a" (first used by instances["a"])',
        "instances[2].options.zzz: unknown key (allowed: disk_path, include_instances)",
    ]
    assert answer["errors"][2].startswith('instances["b"].plugin: unknown plugin "nope"')
    n = len(agent.sub.on("edge/t1/data/steady"))
    agent.sub.wait_for(lambda: len(agent.sub.on("edge/t1/data/steady")) > n + 3, 5, "still publishing")


def test_failing_driver_is_rolled_back(agent: RemoteAgent) -> None:
    broken = {**OTHER, "driver": {"type": "sim", "fail_open": True}}
    answer = agent.push({"version": 2, "config": {"instances": [STEADY, broken]}})
    assert answer["status"] == "rolled_back" and "other" in answer["reason"] and "open failed" in answer["reason"]
    crashing = {**OTHER, "interval_s": 0.2, "driver": {"type": "sim", "fail_reads": [1, 2, 3, 4, 5, 6]}}
    crashy = {"name": "crashy", "plugin": "system", "interval_s": 0.1}
    answer = agent.push({"version": 3, "config": {"instances": [STEADY, crashing, crashy]}})
    assert answer["status"] in ("accepted", "rolled_back")  # values turns read errors into quality
    n = len(agent.sub.on("edge/t1/data/other"))
    agent.sub.wait_for(lambda: len(agent.sub.on("edge/t1/data/other")) > n, 5, "other still publishing")


def test_stale_version_oversize_and_restart_sections(agent: RemoteAgent) -> None:
    assert agent.push({"version": 2, "config": {"instances": [STEADY]}})["status"] == "accepted"
    again = agent.push({"version": 2, "config": {"instances": [STEADY]}})
    assert again["status"] == "already_applied" and again["version"] == 2
    stale = agent.push({"version": 1, "config": {"instances": [STEADY]}})
    assert stale["status"] == "rejected" and stale["errors"][0].startswith("version: stale version 1 (applied: 2")
    no_version = agent.push({"id": "p9", "config": {"instances": []}, "bogus": 1})
    assert no_version["status"] == "rejected" and no_version["id"] == "p9", "issue 20 item 12: id echoed always"
    huge = agent.push(None, raw=msgpack.packb({"version": 3, "config": {"x": "y" * 300_000}}))
    assert huge["status"] == "rejected" and "exceeds remote.max_bytes" in huge["errors"][0]
    mqtt = agent.push({"version": 4, "config": {"mqtt": {"url": "mqtt://elsewhere:1883"}}})
    assert mqtt["status"] == "rejected" and mqtt["errors"] == [
        "mqtt: [mqtt] comes from the agent's local file only; a push may change instances only"
    ]
    json_doc = json.dumps({"version": 5, "config": {"instances": [STEADY]}}).encode()
    assert agent.push(None, raw=json_doc)["status"] == "accepted"


def test_signed_pushes(tmp_path: Path, broker: LocalBroker) -> None:
    key = Ed25519PrivateKey.generate()
    other = Ed25519PrivateKey.generate()
    pub = base64.b64encode(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    a = RemoteAgent(tmp_path, broker, extra=f'require_signature = true\ntrusted_keys = ["{pub}"]\n')
    try:
        cfg = {"instances": [STEADY]}

        def signed(k: Ed25519PrivateKey, version: int, config: dict[str, Any]) -> dict[str, Any]:
            return sign(bound(version, config), k)

        unsigned = a.push(bound(2, cfg))
        assert unsigned["errors"][0].startswith("sig: a signature is required"), unsigned
        assert "is not trusted by this agent" in a.push(signed(other, 2, cfg))["errors"][0]
        tampered = signed(key, 2, cfg)
        tampered["config"] = {"instances": [STEADY, OTHER]}
        tampered["nonce"] = "another-nonce"
        assert "does not match" in a.push(tampered)["errors"][0]
        assert a.push(signed(key, 2, cfg))["status"] == "accepted"
    finally:
        a.close()


def test_applied_config_survives_restart(tmp_path: Path, broker: LocalBroker) -> None:
    a = RemoteAgent(tmp_path, broker)
    try:
        assert a.push({"version": 9, "config": {"instances": [STEADY]}})["status"] == "accepted"
        a.proc.kill()
        a.proc = AgentProcess(a.cfg, broker.url)
        a.sub.wait_for(
            lambda: (
                a.sub.on("edge/t1/status")[-1].env["d"]["state"] == "online"
                and a.sub.on("edge/t1/status")[-1].env["d"]["config_version"] == 9
            ),
            20,
            "restart on v9",
        )
    finally:
        a.close()


WRITER = """
import json, sys
from pathlib import Path
from edge_agent.agent.config.layers import atomic_write
p = Path(sys.argv[1])
v = 0
while True:
    v += 1
    atomic_write(p, json.dumps({"version": v, "pad": "x" * (v % 5000)}).encode())
"""


@pytest.mark.slow
def test_atomic_write_is_old_or_new_after_sigkill(tmp_path: Path) -> None:
    target = tmp_path / APPLIED_FILE
    for i in range(10):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], env={**os.environ})
        deadline = time.monotonic() + scaled(20)
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.01 + 0.013 * i)  # kill at varied moments of the write cycle
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = json.loads(target.read_text())  # never half a file
        assert data["version"] >= 1
