"""The example third-party packages in examples/ (made with `edge-agent new`): installed, their own
tests run, and their README's config passes check-config."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packages import pip_install, run_package_tests
from support import scaled

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PACKAGES = sorted(p.parent for p in EXAMPLES.glob("*/pyproject.toml"))


def test_there_is_an_example_package() -> None:
    assert [p.name for p in PACKAGES] == ["edge-sht3x"]


@pytest.mark.slow
@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_example_package(tmp_path: Path, package: Path) -> None:
    env = pip_install([package], tmp_path / "site")
    run_package_tests(package, env)
    readme = (package / "README.md").read_text()
    snippet = re.search(r"```toml\n(.*?)```", readme, re.S)
    assert snippet is not None, "the README shows a config"
    config = tmp_path / "c.toml"
    config.write_text('[agent]\nid = "t"\n' + snippet.group(1).replace('device = "/dev/i2c-1", ', 'backend = "sim", '))
    cmd = [sys.executable, "-m", "edge_agent.agent", "check-config", str(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=scaled(120))
    assert proc.returncode == 0, proc.stdout + proc.stderr
