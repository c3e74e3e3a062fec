"""Config validation: golden cases (config.toml + expected.txt) and the check-config CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from edge_agent.agent.config import build, load
from edge_agent.agent.errors import ConfigError, RegistryError
from edge_agent.agent.registry import Registry, load_registry
from edge_agent.drivers.sim import SPEC as SIM
from edge_agent.plugins.contract import Plugin, PluginSpec
from edge_agent.plugins.system import SPEC as SYSTEM
from edge_agent.plugins.values import SPEC as VALUES

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "config"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.txt").exists())
ROOT = Path(__file__).resolve().parents[2]


def _normalise(text: str) -> list[str]:
    # The list of installed items grows with third-party packages: compare it as "*".
    return [re.sub(r"\((installed[^)]*)\)", "(installed: *)", line) for line in text.strip().splitlines()]


def test_there_are_at_least_15_bad_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES)
def test_golden_case(case: str) -> None:
    expected = _normalise((GOLDEN / case / "expected.txt").read_text())
    with pytest.raises(ConfigError) as info:
        load(GOLDEN / case / "config.toml", load_registry())
    assert _normalise("\n".join(info.value.errors)) == expected


def test_examples_are_valid() -> None:
    for path in sorted((ROOT / "examples").glob("*.toml")):
        load(path, load_registry())


def test_unknown_plugin_names_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        build({"instances": [{"name": "a", "plugin": "vibrashun"}]}, load_registry())
    (line,) = info.value.errors
    assert "vibrashun" in line and "system" in line and "values" in line


def test_check_config_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "agent", "check-config", str(ROOT / "examples" / "minimal.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "agent", "check-config", str(GOLDEN / "every_error_listed" / "config.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 1
    assert "10 error(s)" in bad.stdout and "instances[0].driver.noise" in bad.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "agent", "check-config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert missing.returncode == 1 and "cannot read" in missing.stdout


def test_a_plugin_breaking_the_contract_is_rejected_when_registered() -> None:
    reg = Registry()
    with pytest.raises(RegistryError, match=r"options must be a msgspec\.Struct"):
        reg.add_plugin(PluginSpec(name="bad", factory=Plugin, options=dict, requires=None))  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match=r"expected a plugins\.contract\.PluginSpec"):
        reg.add_plugin(object())  # type: ignore[arg-type]


def test_broken_entry_point_is_listed_not_fatal() -> None:
    reg = Registry()
    reg.add_plugin(VALUES)
    reg.add_plugin(SYSTEM)
    reg.add_driver(SIM)
    reg.broken[("plugin", "ghost")] = "ImportError: no module named ghost"
    with pytest.raises(ConfigError) as info:
        build({"instances": [{"name": "g", "plugin": "ghost"}]}, reg)
    assert "installed but broken: ImportError" in info.value.errors[0]
    cfg = build({"instances": [{"name": "s", "plugin": "system"}]}, reg)
    assert [i.name for i in cfg.instances] == ["s"]


def test_config_hash_is_stable_and_instance_fingerprint_tracks_changes() -> None:
    reg = load_registry()
    a = build({"instances": [{"name": "s", "plugin": "system", "interval_s": 5}]}, reg)
    b = build({"instances": [{"interval_s": 5, "plugin": "system", "name": "s"}]}, reg)
    c = build({"instances": [{"name": "s", "plugin": "system", "interval_s": 6}]}, reg)
    assert a.hash == b.hash != c.hash
    assert a.instances[0].fingerprint != c.instances[0].fingerprint


def test_relative_file_paths_are_taken_from_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit runs in /run/edge-agent: a relative tags_csv or password_file must not depend on it."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "tags.csv").write_text("name,table,address,type\nspeed,holding_register,0,uint16\n")
    (etc / "password").write_text("secret\n")
    (etc / "agent.toml").write_text(
        '[mqtt]\npassword_file = "password"\nusername = "u"\nca_file = "/etc/ssl/ca.pem"\n'
        '[[instances]]\nname = "plc"\nplugin = "plc"\n'
        '[instances.driver]\ntype = "modbus"\nhost = "127.0.0.1"\ntags_csv = "tags.csv"\n'
    )
    monkeypatch.chdir(tmp_path / "..")  # anywhere but etc/
    cfg = load(etc / "agent.toml", load_registry())
    assert cfg.mqtt.password_file == str(etc / "password")
    assert cfg.mqtt.ca_file == "/etc/ssl/ca.pem"  # absolute paths are left alone
    assert cfg.instances[0].driver_options.tags_csv == str(etc / "tags.csv")
    assert cfg.raw["instances"][0]["driver"]["tags_csv"] == "tags.csv"  # hashes, diffs and pushes see the text
    assert cfg.base_dir == str(etc)
    # the same document built without a file (a push validated locally) keeps the working directory
    with pytest.raises(ConfigError, match=r"instances\[0\]\.driver\.tags_csv: .*tags\.csv"):
        build(cfg.raw, load_registry(), source="push")
