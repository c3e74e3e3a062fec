"""Config validation: golden cases (config.toml + expected.txt) and the check-config CLI."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from edge_agent.agent.config.registry import Registry, load_registry
from edge_agent.agent.config.schema import build, load
from edge_agent.agent.errors import ConfigError
from edge_agent.drivers.contract import ContractError
from edge_agent.drivers.modbus.tags import TagMapError, load_csv
from edge_agent.drivers.sim.driver import SPEC as SIM
from edge_agent.plugins.contract import Plugin, PluginSpec
from edge_agent.plugins.system.plugin import SPEC as SYSTEM
from edge_agent.plugins.values.plugin import SPEC as VALUES

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "config"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.txt").exists())
ROOT = Path(__file__).resolve().parents[2]


def _normalise(text: str) -> list[str]:
    # The list of installed items grows with third-party packages: compare it as "*".
    return [re.sub(r"installed: [^)]*\)", "installed: *)", line) for line in text.strip().splitlines()]


def test_there_are_at_least_15_bad_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES)
def test_golden_case(case: str) -> None:
    expected = _normalise((GOLDEN / case / "expected.txt").read_text())
    with pytest.raises(ConfigError) as info:
        load(GOLDEN / case / "config.toml", load_registry())
    assert _normalise("\n".join(info.value.errors)) == expected


def example_files(root: Path) -> dict[str, list[Path]]:
    """Every file under ``root`` by how it is checked; an example package (a folder with its own
    pyproject.toml) is tested by its own tests and left out here."""
    packages = [p.parent for p in root.rglob("pyproject.toml")]
    kinds: dict[str, list[Path]] = {"config": [], "snippet": [], "tags": [], "unchecked": []}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if any(pkg in path.parents for pkg in packages) or "__pycache__" in path.parts:
            continue
        if path.suffix == ".toml":
            kinds["snippet" if "snippets" in path.parts else "config"].append(path)
        elif path.suffix == ".csv":
            kinds["tags"].append(path)
        else:
            kinds["unchecked"].append(path)
    return kinds


def check_examples(root: Path) -> list[str]:
    """Problems of the example folder: every config validates, every snippet validates (naming
    instances of other snippets, which the reference plant puts together), every tag map loads."""
    kinds = example_files(root)
    if not kinds["config"] or not kinds["snippet"]:
        return [f"{root}: no example configs or snippets found"]
    problems = [f"{p}: not checked by any test (add a check here)" for p in kinds["unchecked"]]
    for path in kinds["config"]:
        try:
            load(path, load_registry())
        except ConfigError as exc:
            problems += [f"{path}: {e}" for e in exc.errors]
    snippet_instances = {
        p: {i["name"] for i in tomllib.loads(p.read_text()).get("instances", [])} for p in kinds["snippet"]
    }
    for path in kinds["snippet"]:
        others = set().union(*(names for p, names in snippet_instances.items() if p != path))
        try:
            load(path, load_registry())
        except ConfigError as exc:
            for e in exc.errors:
                named = re.search(r': no instance "([^"]+)" in this config', e)
                if not (named and named.group(1) in others):
                    problems.append(f"{path}: {e}")
    for path in kinds["tags"]:
        try:
            load_csv(str(path))
        except TagMapError as exc:
            problems.append(f"{path}: {exc}")
    return problems


def test_examples_are_valid() -> None:
    assert check_examples(ROOT / "examples") == []


def test_the_examples_check_fails_on_an_empty_folder_and_on_a_broken_snippet(tmp_path: Path) -> None:
    assert check_examples(tmp_path) == [f"{tmp_path}: no example configs or snippets found"]
    (tmp_path / "snippets").mkdir()
    (tmp_path / "ok.toml").write_text('[[instances]]\nname = "s"\nplugin = "system"\n')
    (tmp_path / "snippets" / "bad.toml").write_text('[[instances]]\nname = "s"\nplugin = "nope"\n')
    (tmp_path / "notes.txt").write_text("")
    problems = check_examples(tmp_path)
    assert any('snippets/bad.toml: instances["s"].plugin: unknown plugin' in p for p in problems)
    assert f"{tmp_path / 'notes.txt'}: not checked by any test (add a check here)" in problems


def test_unknown_plugin_names_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        build({"instances": [{"name": "a", "plugin": "vibrashun"}]}, load_registry())
    (line,) = info.value.errors
    assert "vibrashun" in line and "system" in line and "values" in line


@pytest.mark.slow
def test_check_config_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", "check-config", str(ROOT / "examples" / "minimal.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", "check-config", str(GOLDEN / "every_error_listed" / "config.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 1
    assert "10 error(s)" in bad.stdout and 'instances["a"].driver.noise' in bad.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", "check-config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert missing.returncode == 1 and "cannot read" in missing.stdout


def test_a_plugin_breaking_the_contract_is_rejected_when_registered() -> None:
    reg = Registry()
    with pytest.raises(ContractError, match=r"options must be a msgspec\.Struct"):
        reg.add_plugin(PluginSpec(name="bad", factory=Plugin, options=dict, requires=None))  # type: ignore[arg-type]
    with pytest.raises(ContractError, match=r"expected a plugins\.contract\.PluginSpec"):
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
    with pytest.raises(ConfigError, match=r"instances\[\"plc\"\]\.driver\.tags_csv: .*tags\.csv"):
        build(cfg.raw, load_registry(), source="push")


def test_options_whose_annotations_do_not_resolve_are_refused_not_left_relative() -> None:
    """Issue 20.5: such a class used to be accepted and its FilePath options silently left relative."""
    ns: dict[str, object] = {}
    code = "from __future__ import annotations\nfrom edge_agent.drivers.contract import Options\n"
    exec(code + "class Opts(Options):\n    path: MissingPath = ''\n", ns)
    spec = dataclasses.replace(SIM, name="broken", options=ns["Opts"])  # type: ignore[type-var]
    with pytest.raises(ContractError, match=r"annotations of options Opts do not resolve \(NameError"):
        Registry().add_driver(spec)
    reg = Registry()
    reg.add_plugin(VALUES)
    reg.drivers.add_entry_point(EntryPoint("broken", "tests_missing:SPEC", "edge_agent.drivers"))
    reg.broken[("driver", "broken")] = "ContractError: the annotations of options Opts do not resolve"
    with pytest.raises(ConfigError) as info:
        build({"instances": [{"name": "b", "plugin": "values", "driver": {"type": "broken"}}]}, reg)
    assert info.value.errors == [
        'instances["b"].driver.type: unknown driver "broken" '
        "(installed but broken: ContractError: the annotations of options Opts do not resolve)",
    ]
