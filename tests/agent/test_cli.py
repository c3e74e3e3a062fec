"""The command line: --version, listings, tail, and the demo end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from edge_agent.agent import cli
from edge_agent.agent.devtools.local_broker import LocalBroker
from support import AgentProcess, scaled, write_config

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


@pytest.mark.slow
def test_version_and_help() -> None:
    assert _cli("--version").stdout.startswith("edge-agent ")
    for sub in ("run", "check-config", "tail", "demo", "push-config", "capture", "plugins", "drivers"):
        out = _cli(sub, "--help")
        assert out.returncode == 0 and "usage: edge-agent" in out.stdout


@pytest.mark.slow
def test_plugins_and_drivers_listed_with_source() -> None:
    plugins = _cli("plugins").stdout
    assert "system" in plugins and "values" in plugins and "built-in" in plugins
    assert "sim" in _cli("drivers").stdout


@pytest.mark.slow
def test_demo_runs_end_to_end_and_stops_cleanly() -> None:
    # 7 s on the idle VM: the plain view prints every 5 s, and an emulated Pi needs longer before
    # the plant simulator's instances have published (the run is longer, the checks the same).
    out = _cli("demo", "--seconds", f"{scaled(7):.0f}", "--plain", timeout=scaled(90))
    assert out.returncode == 0, out.stderr
    assert "DATA system" in out.stdout and "demo: stopped" in out.stdout
    assert "demo: panel on http://127.0.0.1:" in out.stdout and "demo / demo-panel" in out.stdout  # issue 26
    # the PLC and the accelerometers come from the plant simulator's process, read as hardware
    for instance in ("plc1", "pump1-de", "pump1-nde", "fan2"):
        assert f"DATA {instance}:" in out.stdout, out.stdout


def test_tail_prints_json_lines(tmp_path: Path, broker: LocalBroker) -> None:
    cfg = write_config(
        tmp_path / "a.toml",
        state_dir=tmp_path / "s",
        instances="""
[[instances]]
name = "sine"
plugin = "values"
interval_s = 0.2
driver = { type = "sim", profile = "ramp" }
""",
    )
    agent = AgentProcess(cfg, broker.url)
    try:
        out = _cli("tail", "--url", broker.url, "--count", "3", "--seconds", "20", "edge/t1/data/#")
    finally:
        agent.stop()
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == 3 and all(x["topic"] == "edge/t1/data/sine" and "ch0" in x["d"] for x in lines)


@pytest.mark.slow
def test_malloc_tuned_in_a_child_unless_the_environment_says_otherwise() -> None:
    """The CLI sets glibc malloc's arenas and thresholds itself (demo, bench, shell), as the unit's
    Environment= lines do; a variable set in the environment wins (mallopt is not called for it)."""
    import os
    import subprocess
    import sys

    code = """
import ctypes, edge_agent.agent.cli as c
calls = []
class Libc:
    def mallopt(self, parameter, value):
        calls.append((parameter, value))
        return 1
ctypes.CDLL = lambda name: Libc()
c.tune_malloc()
print(calls)
"""
    names = {name for name, _, _ in cli.MALLOC_SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in names}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str([(p, v) for _, p, v in cli.MALLOC_SETTINGS]) and out.stderr == ""
    env["MALLOC_ARENA_MAX"] = "4"  # an explicit setting wins: its mallopt is not called
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str([(p, v) for n, p, v in cli.MALLOC_SETTINGS if n != "MALLOC_ARENA_MAX"])


def test_the_unit_sets_what_the_cli_sets() -> None:
    """systemd/edge-agent.service shows the malloc settings the CLI applies, with the same values."""
    unit = (ROOT / "systemd" / "edge-agent.service").read_text()
    for name, _, value in cli.MALLOC_SETTINGS:
        assert f"{name}={value}" in unit, name


def test_settle_gc_freezes_start_up_objects() -> None:
    """A full collection then walks only objects made after start-up (no 15 ms GIL pause)."""
    import gc

    from edge_agent.agent.runtime.runtime import settle_gc

    before = gc.get_freeze_count()
    try:
        settle_gc()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
