"""The tools behind `make test-arm64` / `make smoke-armhf` that can be checked natively, without root."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_tail", REPO / "tests" / "emulated" / "check_tail.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PLANT: dict[str, Any] = {
    "agent": {"id": "plant-01"},
    "mqtt": {"prefix": "edge"},
    "instances": [{"name": "gpio", "interval_s": 1.0}, {"name": "line1", "interval_s": 10.0}],
}


def _run(n: int = 20) -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = [{"topic": "edge/plant-01/status", "retained": True, "seq": 0, "d": {"online": True}}]
    recs += [{"topic": "edge/plant-01/data/gpio", "seq": i, "d": {"shaft_rpm": 1485.2}} for i in range(n)]
    recs += [{"topic": "edge/plant-01/data/line1", "seq": 0, "d": {"count": 3}}]
    return recs


def test_check_tail_passes_a_good_run() -> None:
    assert _checker().check(_run(), "INFO agent: started\n", PLANT, 20.0) == []


def test_check_tail_names_each_fault() -> None:
    recs = _run()
    del recs[5]  # a lost message: seq jumps
    recs.append({"topic": "edge/plant-01/data/gpio", "error": "not MessagePack", "bytes": 3})
    recs = [r for r in recs if r["topic"] != "edge/plant-01/data/line1"]
    log = "2026-11-29 ERROR drivers.gpio: chip gone\nTraceback (most recent call last):\n"
    failures = _checker().check(recs, log, PLANT, 20.0)
    text = "\n".join(failures)
    assert "seq not consecutive" in text and "edge/plant-01/data/gpio" in text
    assert "undecodable message on edge/plant-01/data/gpio" in text
    assert "no data from instance line1" in text
    assert "agent log: 2026-11-29 ERROR drivers.gpio: chip gone" in text
    assert "Traceback" in text


@pytest.mark.slow
def test_check_tail_knows_the_tachometer_answer(tmp_path: Path) -> None:
    recs = _run()
    recs[-2]["d"] = {"shaft_rpm": 1400.0}  # the simulation turns at 1485 rpm
    tail = tmp_path / "tail.jsonl"
    tail.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    (tmp_path / "agent.log").write_text("")
    (tmp_path / "plant.toml").write_text(
        'version = 1\n[agent]\nid = "plant-01"\n[[instances]]\nname = "gpio"\ninterval_s = 1.0\n'
    )
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests/emulated/check_tail.py"), str(tail), str(tmp_path / "agent.log"),
         str(tmp_path / "plant.toml"), "--seconds", "20"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout
    assert "FAIL gpio tachometer reads 1400.0 rpm" in proc.stdout


@pytest.mark.slow
def test_build_wheelhouse_refuses_an_unknown_arch() -> None:
    proc = subprocess.run(
        ["bash", str(REPO / "deploy/build-wheelhouse.sh"), "--arch", "mips"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "--arch must be aarch64 or armv7l, not 'mips'" in proc.stderr


@pytest.mark.slow
def test_emulated_root_refuses_an_unknown_arch() -> None:
    proc = subprocess.run(
        ["bash", str(REPO / "deploy/emulated-root.sh"), "check", "riscv64"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "unknown arch 'riscv64' (arm64 or armhf)" in proc.stderr


def test_demo_of_an_installed_release_finds_the_plant_in_the_current_directory(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """Found under emulation: a wheel carries no examples/, so the demo looked only beside its code."""
    from edge_agent.agent.devtools import demo

    monkeypatch.setattr(demo, "DEFAULT_CONFIG", tmp_path / "site-packages" / "examples" / "reference-plant.toml")
    monkeypatch.chdir(tmp_path)
    assert demo._load(None) == demo.FALLBACK
    assert "no examples/reference-plant.toml here" in capsys.readouterr().err
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "reference-plant.toml").write_text('version = 1\n[agent]\nid = "x"\n')
    assert demo.default_config() == tmp_path / "examples" / "reference-plant.toml"
    assert demo._load(None)["agent"] == {"id": "x"}
