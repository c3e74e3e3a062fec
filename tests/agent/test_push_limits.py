"""Issue 30 item 5: what a pushed instance may reach. Files only under the directories the local
file allows (never opened otherwise, never quoted), hosts only those the local file names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import build
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.remote.push_limits import allowed_hosts, reach_errors
from support import RemoteAgent

PASSWD_LINE = "root:x:0:0:root:/root:/bin/bash"


def _modbus(name: str, **driver: Any) -> dict[str, Any]:
    return {"name": name, "plugin": "plc", "interval_s": 0.5, "driver": {"type": "modbus", **driver}}


@pytest.fixture
def agent(tmp_path: Path, broker: LocalBroker) -> Iterator[RemoteAgent]:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    a = RemoteAgent(tmp_path, broker, extra=f'push_file_dirs = ["{allowed}"]\n')
    try:
        yield a
    finally:
        a.close()


def test_a_push_reads_no_file_outside_the_allowed_directories(agent: RemoteAgent, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    secret = tmp_path / "secret.txt"
    secret.write_text(PASSWD_LINE + "\n")
    (allowed / "link.csv").symlink_to(secret)
    (allowed / "passwd.csv").write_text(PASSWD_LINE + "\n")
    (allowed / "tags.csv").write_text("name,address,type\nsp,1,uint16\n")
    version = 0
    for where in ("/etc/passwd", str(secret), "allowed/../secret.txt", str(allowed / "link.csv")):
        version += 1
        r = agent.push({"version": version, "config": {"instances": [_modbus("evil", backend="sim", tags_csv=where)]}})
        assert r["status"] == "rejected", r
        assert any("outside the directories a push may read" in e for e in r["errors"]), r
    # a file where pushes may read, that is not a tag map: refused without its content
    version += 1
    r = agent.push(
        {
            "version": version,
            "config": {"instances": [_modbus("p", backend="sim", tags_csv=str(allowed / "passwd.csv"))]},
        }
    )
    assert r["status"] == "rejected" and "column 1 is not a tag field" in str(r["errors"]), r
    state = agent.sub.on("edge/t1/config/state")[-1].env["d"]
    for text in (str(r), str(state), *(str(m.env["d"]) for m in agent.sub.on("edge/t1/config/result"))):
        assert "root:x" not in text and "/bin/bash" not in text
    version += 1
    good = _modbus("plc", backend="sim", tags_csv=str(allowed / "tags.csv"))
    assert agent.push({"version": version, "config": {"instances": [good]}})["status"] == "accepted"


def test_a_push_reaches_only_hosts_the_file_names(agent: RemoteAgent) -> None:
    r = agent.push(
        {"version": 1, "config": {"instances": [_modbus("out", host="10.1.2.3", tags=[{"name": "a", "address": 1}])]}}
    )
    assert r["status"] == "rejected", r
    assert (
        "instances[0].driver.host: 10.1.2.3:502 is not a host this agent's pushes may reach (allowed: none"
        in r["errors"][0]
    )


def test_the_allowed_hosts_default_to_the_files_own() -> None:
    reg = load_registry()
    tags = [{"name": "a", "address": 1}]
    file_cfg = build(
        {"instances": [_modbus("plc1", host="10.0.0.5", tags=tags), _modbus("plc2", port=1502, tags=tags)]}, reg
    )
    assert allowed_hosts(file_cfg, reg) == ["10.0.0.5:502", "127.0.0.1:1502"]
    same = [_modbus("x", host="10.0.0.5", tags=tags), _modbus("y", port=1502, tags=tags)]
    assert reach_errors(same, file_cfg, reg) == []
    other_port = [_modbus("x", host="10.0.0.5", port=503, tags=tags)]
    assert "10.0.0.5:503 is not a host" in reach_errors(other_port, file_cfg, reg)[0]
    wide = build({"remote": {"push_hosts": ["10.0.0.9"]}, "instances": []}, reg)
    assert reach_errors([_modbus("z", host="10.0.0.9", port=1, tags=tags)], wide, reg) == []
    assert reach_errors([_modbus("z", backend="sim", tags=tags)], wide, reg) == [], "no host named: the default"


def test_a_stored_layer_is_checked_again_at_start(tmp_path: Path, broker: LocalBroker) -> None:
    # A layer stored before these checks (or under wider allow-lists) naming /etc/passwd and a far host.
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    stored = [
        _modbus("leak", backend="sim", tags_csv="/etc/passwd"),
        _modbus("far", host="10.9.9.9", tags=[{"name": "a", "address": 1}]),
    ]
    (state / "applied-config.json").write_text(json.dumps({"version": 7, "instances": stored}))
    a = RemoteAgent(tmp_path, broker)
    try:
        a.sub.wait_for(lambda: a.sub.on("edge/t1/config/state"), 20, "the state")
        st = a.sub.on("edge/t1/config/state")[-1].env["d"]
        assert set(st["instances"]) == {"steady", "other"} and st["version"] == 0, st
        assert "outside the directories a push may read" in a.proc.log()
        assert "root:x" not in a.proc.log() and "root:x" not in str(st)
    finally:
        a.close()


def test_other_absolute_paths_of_a_push_stay_under_dev_and_sys(tmp_path: Path) -> None:
    reg = load_registry()
    file_cfg = build({"agent": {"state_dir": str(tmp_path / "s")}, "instances": []}, reg)
    rtu = _modbus("rtu", transport="rtu", serial_port="/proc/self/environ", tags=[{"name": "a", "address": 1}])
    iio = {"name": "acc", "plugin": "vibration", "driver": {"type": "iio", "sysfs_root": "/etc", "dev_dir": "/dev"}}
    errors = reach_errors([rtu, iio], file_cfg, reg)
    assert len(errors) == 2, errors
    assert errors[0].startswith("instances[0].driver.serial_port: '/proc/self/environ' is outside")
    assert errors[1].startswith("instances[1].driver.sysfs_root: '/etc' is outside")
    fine = _modbus("rtu", transport="rtu", serial_port="/dev/ttyUSB1", tags=[{"name": "a", "address": 1}])
    assert reach_errors([fine], file_cfg, reg) == []
