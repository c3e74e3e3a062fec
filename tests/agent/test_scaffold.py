"""`edge-agent new`: a scaffolded driver and plugin install, pass their own tests, check-config,
and their values reach the broker through a real agent (the integrator's whole path)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.cli import main
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.devtools.scaffold import names, render, write_package
from packages import pip_install, run_package_tests
from support import AgentProcess, Subscriber, scaled, write_config

INSTANCES = """
[[instances]]
name = "probe"
plugin = "values"
interval_s = 0.2
driver = { type = "demo_probe", backend = "sim", sim_value = 12.5 }
options = { heartbeat_s = 0 }

[[instances]]
name = "watch"
plugin = "demo_watch"
interval_s = 0.2
driver = { type = "sim", profile = "constant", offset = 3.0 }
options = { key = "ch0", limit = 1.0 }
"""


def test_scaffold_to_published_value(tmp_path: Path, broker: LocalBroker) -> None:
    t0 = time.monotonic()
    assert main(["new", "driver", "demo_probe", "--bus", "i2c", "--dir", str(tmp_path)]) == 0
    assert main(["new", "plugin", "demo_watch", "--dir", str(tmp_path)]) == 0
    driver_pkg, plugin_pkg = tmp_path / "edge-demo-probe", tmp_path / "edge-demo-watch"
    site = tmp_path / "site"
    env = pip_install([driver_pkg, plugin_pkg], site)
    t_installed = time.monotonic()
    for package in (driver_pkg, plugin_pkg):
        run_package_tests(package, env)
    t_tested = time.monotonic()

    cfg = write_config(tmp_path / "agent.toml", state_dir=tmp_path / "state", instances=INSTANCES)
    check = [sys.executable, "-m", "edge_agent.agent", "check-config", str(cfg)]
    proc = subprocess.run(check, capture_output=True, text=True, env=env, timeout=scaled(120))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", "drivers"], capture_output=True, text=True, env=env
    )
    assert "demo_probe" in listing.stdout and "edge-demo-probe 0.1.0" in listing.stdout

    sub = Subscriber(broker.url, ["edge/t1/data/#"])
    agent = AgentProcess(cfg, broker.url, extra_env={"PYTHONPATH": str(site)})
    try:
        probe = sub.wait_for(lambda: sub.on("edge/t1/data/probe"), 30, "the scaffolded driver's value")
        watch = sub.wait_for(lambda: sub.on("edge/t1/data/watch"), 30, "the scaffolded plugin's values")
    finally:
        agent.stop()
        sub.close()
    t_published = time.monotonic()
    assert probe[0].env["d"]["value"] == pytest.approx(12.5)
    assert watch[0].env["d"] == {"value": 3.0, "above": True}
    print(
        f"\nscaffold -> published: {t_published - t0:.1f} s (scaffold + pip install {t_installed - t0:.1f} s, "
        f"package tests {t_tested - t_installed:.1f} s, check-config + agent to first value "
        f"{t_published - t_tested:.1f} s; load {os.getloadavg()[0]:.1f})"
    )


@pytest.mark.parametrize("bus", ["spi", "serial", "none"])
def test_every_bus_template_renders_valid_python(tmp_path: Path, bus: str) -> None:
    target = write_package("driver", f"probe_{bus}", tmp_path, bus=bus)
    for path in target.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    assert '[project.entry-points."edge_agent.drivers"]' in (target / "pyproject.toml").read_text()
    assert "{{" not in "".join(p.read_text() for p in target.rglob("*") if p.is_file())


def test_bad_names_and_existing_folders_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "driver", "Bad-Name", "--dir", str(tmp_path)]) == 1
    assert "lower-case letters" in capsys.readouterr().out
    assert main(["new", "plugin", "twice", "--dir", str(tmp_path)]) == 0
    assert main(["new", "plugin", "twice", "--dir", str(tmp_path)]) == 1
    assert "exists" in capsys.readouterr().out


def test_names_and_render() -> None:
    assert names("sht3x_rh") == {
        "name": "sht3x_rh",
        "module": "edge_sht3x_rh",
        "dist": "edge-sht3x-rh",
        "Class": "Sht3xRh",
    }
    assert render("{{Class}}Driver", names("ads")) == "AdsDriver"


@pytest.mark.slow
def test_scaffolded_packages_pass_mypy_strict(tmp_path: Path) -> None:
    """What an integrator's CI runs: every template, code and tests, clean under ``mypy --strict``."""
    packages = [write_package("driver", f"strict_{bus}", tmp_path, bus=bus) for bus in ("i2c", "spi", "serial", "none")]
    packages.append(write_package("plugin", "strict_plugin", tmp_path))
    files = [str(f) for p in packages for f in sorted(p.rglob("*.py"))]
    cmd = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache")]
    search = ":".join(map(str, packages))  # edge_agent.* is found through the (editable) install
    proc = subprocess.run([*cmd, *files], capture_output=True, text=True, cwd=tmp_path, env={"MYPYPATH": search})
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("bus", ["i2c", "spi", "serial", "none"])
def test_template_options_built_from_strings_never_reach_hardware(
    tmp_path: Path, bus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24 item 3: ``MyOptions(backend="sim")`` (a string, built directly as a test would)
    runs the emulated backend, never the bus: the templates compare backends by value."""
    import builtins
    import importlib

    target = write_package("driver", f"str_{bus}", tmp_path, bus=bus)
    module = names(f"str_{bus}")["module"]
    monkeypatch.syspath_prepend(str(target))
    mod = importlib.import_module(module)
    real_open, real_os_open = builtins.open, os.open

    def refuse(path: object) -> None:
        assert not str(path).startswith(("/dev/", "/sys/")), f"the {bus} template opened {path} with backend='sim'"

    def guarded_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        refuse(path)
        return real_open(path, *args, **kwargs)

    def guarded_os_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        refuse(path)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    options = mod.SPEC.options(backend="sim")  # no msgspec.convert: the string stays a string
    assert options.backend == "sim" and type(options.backend) is str
    driver = mod.SPEC.factory(options)
    driver.open()
    try:
        assert driver.read().values
    finally:
        driver.close()
