"""Issue 30 item 7: the agent's state is private whatever the umask, a state directory another user
made is refused, and plantsim's control directory is fresh and private (or refused)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.drivers.private_dirs import NotPrivate, check, claim, exposed_root
from support import ROOT, AgentProcess, RemoteAgent, cli, scaled, write_config

OTHER_UID = 65534  # nobody
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a directory of another user needs root")


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(os.lstat(p).st_mode) for p in [root, *root.rglob("*")]}


def test_state_files_are_0600_and_dirs_0700_whatever_the_umask(tmp_path: Path, broker: LocalBroker) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "old-file.json").write_text("{}")  # written by an older version under umask 022
    os.chmod(state / "old-file.json", 0o644)
    old = os.umask(0o022)
    try:
        a = RemoteAgent(tmp_path, broker)
        try:
            pushed = {"name": "more", "plugin": "values", "interval_s": 0.5, "driver": {"type": "sim"}}
            assert a.push({"version": 1, "config": {"instances": [pushed]}})["status"] == "accepted"
        finally:
            assert a.proc.stop() == 0
            a.sub.close()
    finally:
        os.umask(old)
    modes = _modes(state)
    assert {"applied-config.json", "seq.sqlite", "old-file.json"} <= modes.keys(), modes
    loose = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert not loose, f"open to group or others: {loose}"
    assert modes["."] == 0o700


@as_root
def test_a_state_dir_of_another_user_is_refused(tmp_path: Path, broker: LocalBroker) -> None:
    state = tmp_path / "planted"
    state.mkdir()
    (state / "applied-config.json").write_text(json.dumps({"version": 9, "instances": []}))
    os.chown(state, OTHER_UID, OTHER_UID)
    cfg = write_config(tmp_path / "a.toml", state_dir=state, instances="")
    agent = AgentProcess(cfg, broker.url)
    assert agent.proc.wait(30) == 78, agent.log()
    agent.kill()
    assert f"is owned by uid {OTHER_UID}, not by this user" in agent.log()
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(NotPrivate, match="not a directory"):
        claim(link)


def test_claim_check_and_exposed_root(tmp_path: Path) -> None:
    assert exposed_root("/tmp/edge-x/sys/bus") == Path("/tmp/edge-x")
    assert exposed_root("/var/lib/edge-agent") is None
    fresh = tmp_path / "fresh"
    assert claim(fresh) == "created" and stat.S_IMODE(os.stat(fresh).st_mode) == 0o700
    assert claim(fresh) == "kept"
    os.chmod(fresh, 0o777)
    assert claim(fresh) == "tightened" and stat.S_IMODE(os.stat(fresh).st_mode) == 0o700
    check(fresh)
    os.chmod(fresh, 0o770)
    with pytest.raises(NotPrivate, match="may be written by others"):
        check(fresh)


PLANT = """
[[instances]]
name = "plc"
plugin = "plc"
driver = {{ type = "modbus", host = "127.0.0.1", port = {port}, layout = "reference" }}
"""


def _plantsim(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent.drivers.simulation.plantsim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.slow
@as_root
def test_plantsim_refuses_a_control_directory_it_did_not_create(tmp_path: Path) -> None:
    # Another user pre-creates the shared directory in /tmp to take over the socket.
    shared = Path(f"/tmp/edge-plantsim-test-{os.getpid()}")
    shared.mkdir(mode=0o777)
    try:
        os.chown(shared, OTHER_UID, OTHER_UID)
        cfg = tmp_path / "plant.toml"
        cfg.write_text(PLANT.format(port=0))
        proc = _plantsim("-c", str(cfg), "--control", str(shared / "control.sock"))
        out, err = proc.communicate(timeout=scaled(60))
        assert proc.returncode == 1 and f"is owned by uid {OTHER_UID}" in err, (out, err)
        assert not (shared / "control.sock").exists()
        # and the client does not ask a socket there
        status = cli("plantsim", "status", "--control", str(shared / "control.sock"))
        assert status.returncode == 1 and "not asking" in status.stderr, status.stderr
    finally:
        os.rmdir(shared)


@pytest.mark.slow
def test_plantsim_makes_a_fresh_private_control_directory(tmp_path: Path) -> None:
    shared = Path(f"/tmp/edge-plantsim-fresh-{os.getpid()}")
    cfg = tmp_path / "plant.toml"
    cfg.write_text(PLANT.format(port=0))
    proc = _plantsim("-c", str(cfg), "--control", str(shared / "control.sock"))
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["private"] == {str(shared): "created"}
        assert stat.S_IMODE(os.stat(shared).st_mode) == 0o700
        status = cli("plantsim", "status", "--control", str(shared / "control.sock"))
        assert status.returncode == 0 and '"plc"' in status.stdout, status.stderr
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=scaled(30))
        assert f"made a fresh private directory {shared}" in err
        if shared.exists():
            for p in shared.iterdir():
                p.unlink()
            shared.rmdir()
