"""The systemd unit: `systemd-analyze verify` clean, security exposure <= 2.0; shellcheck on deploy/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "edge-agent.service"
PANEL_UNIT = REPO / "systemd" / "edge-agent-panel.service"
PANEL_EXEC = "ExecStart=/opt/edge-agent/venv/bin/edge-agent panel -c /etc/edge-agent-panel/panel.toml"
EXPOSURE_LIMIT = 2.0
EXEC_START = "/opt/edge-agent/venv/bin/edge-agent"

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this host"
)


def unit_copy(directory: Path, drop_in: str | None = None) -> Path:
    """Copy the unit, ExecStart pointed at an existing binary (verify fails on a missing one)."""
    text = UNIT.read_text()
    assert f"ExecStart={EXEC_START} run -c /etc/edge-agent/config.toml" in text
    path = directory / UNIT.name
    path.write_text(text.replace(f"ExecStart={EXEC_START}", f"ExecStart={shutil.which('true')}"))
    if drop_in is not None:
        (directory / f"{UNIT.name}.d").mkdir()
        (directory / f"{UNIT.name}.d" / "10-groups.conf").write_text(drop_in)
    return path


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def exposure(path: Path) -> float:
    """Run the offline security analysis and return the overall exposure figure."""
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    return float(match.group(1))


def test_unit_declares_the_lifecycle_contract() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "EnvironmentFile=-/etc/edge-agent/env",
        "User=edge-agent",
        "StateDirectory=edge-agent",
        "ProtectSystem=strict",
        "DevicePolicy=closed",
        "CapabilityBoundingSet=",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line


@pytest.mark.slow
@needs_analyze
def test_verify_is_clean(tmp_path: Path) -> None:
    proc = verify(unit_copy(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # verify exits 0 on unknown keys: any warning is a failure


@pytest.mark.slow
@needs_analyze
def test_verify_is_clean_with_group_drop_in(tmp_path: Path) -> None:
    drop_in = "[Service]\nSupplementaryGroups=\nSupplementaryGroups=dialout\n"
    proc = verify(unit_copy(tmp_path, drop_in))
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.slow
@needs_analyze
def test_security_exposure_at_most_2(tmp_path: Path) -> None:
    value = exposure(unit_copy(tmp_path))
    print(f"systemd-analyze security exposure: {value}")
    assert value <= EXPOSURE_LIMIT


@pytest.mark.slow
@needs_analyze
def test_verify_catches_a_bad_key(tmp_path: Path) -> None:
    """Guards the test itself: a typo in a directive must show up on stderr."""
    path = unit_copy(tmp_path)
    path.write_text(path.read_text().replace("ProtectHome=yes", "ProtectHomee=yes"))
    assert "ProtectHomee" in verify(path).stderr


@pytest.mark.slow
def test_shellcheck_deploy_scripts() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    scripts = sorted(str(p) for p in (REPO / "deploy").glob("*.sh"))
    assert scripts
    proc = subprocess.run([shellcheck, "-x", *scripts], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_unit_allows_only_private_addresses_and_the_drop_in_adds_the_configs_others(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert re.search(r"^IPAddressDeny=any$", text, re.M)
    allow = re.search(r"^IPAddressAllow=(.*)$", text, re.M)
    assert allow is not None
    from edge_agent.agent.config.registry import load_registry
    from edge_agent.agent.config.schema import build
    from edge_agent.agent.config.unit_addresses import UNIT_ALLOWED, drop_in

    named = set(allow.group(1).split()) - {"localhost", "link-local"}
    assert named <= set(UNIT_ALLOWED), "unit_addresses knows what the unit allows"
    reg = load_registry()
    plc = {
        "name": "plc",
        "plugin": "plc",
        "driver": {"type": "modbus", "host": "192.168.1.20", "tags": [{"name": "a", "address": 1}]},
    }
    private = build({"mqtt": {"url": "mqtt://10.0.0.2:1883"}, "instances": [plc]}, reg)
    assert drop_in(private, reg) == ("", [])
    public = build(
        {
            "mqtt": {"url": "mqtts://203.0.113.7:8883"},
            "instances": [{**plc, "driver": {**plc["driver"], "host": "198.51.100.9"}}],
        },
        reg,
    )
    text_in, unresolved = drop_in(public, reg)
    assert unresolved == [] and "IPAddressAllow=198.51.100.9 203.0.113.7" in text_in, text_in
    if shutil.which("systemd-analyze") is not None:
        proc = verify(unit_copy(tmp_path, text_in))
        assert (proc.returncode, proc.stderr) == (0, "")


def panel_unit_copy(directory: Path) -> Path:
    """The panel's unit, ExecStart pointed at an existing binary (verify fails on a missing one)."""
    text = PANEL_UNIT.read_text()
    assert PANEL_EXEC in text
    path = directory / PANEL_UNIT.name
    path.write_text(text.replace(f"ExecStart={EXEC_START}", f"ExecStart={shutil.which('true')}"))
    return path


def test_panel_unit_runs_as_its_own_user_only_when_configured() -> None:
    text = PANEL_UNIT.read_text()
    for line in (
        PANEL_EXEC,
        "ConditionPathExists=/etc/edge-agent-panel/panel.toml",
        "User=edge-agent-panel",
        "ProtectSystem=strict",
        "PrivateDevices=yes",
        "CapabilityBoundingSet=",
        "InaccessiblePaths=-/etc/edge-agent -/var/lib/edge-agent",
        "IPAddressDeny=any",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert not re.search(r"^(SupplementaryGroups|DeviceAllow|StateDirectory)=", text, re.M)


@pytest.mark.slow
@needs_analyze
def test_panel_unit_verify_is_clean(tmp_path: Path) -> None:
    proc = verify(panel_unit_copy(tmp_path))
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.slow
@needs_analyze
def test_panel_unit_security_exposure_at_most_2(tmp_path: Path) -> None:
    value = exposure(panel_unit_copy(tmp_path))
    print(f"systemd-analyze security exposure of the panel: {value}")
    assert value <= EXPOSURE_LIMIT
