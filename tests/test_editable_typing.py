"""An editable install of edge-agent is one a type checker can follow.

docs/driver-guide.md ("Start from the scaffold") installs edge-agent from a checkout with
``pip install -e``, as ``make`` does for this test run. An integrator then runs ``mypy --strict``
on their package: mypy does not run import hooks, so it must find ``edge_agent.*`` as files on
``sys.path`` (the checkout's ``edge_agent/`` folder, links to agent/, drivers/ and plugins/, put
there by the editable install's ``.pth``), with no MYPYPATH and no link tree of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest
from edge_agent.agent.devtools.scaffold import write_package
from support import ROOT


def test_this_run_uses_an_editable_install_of_this_checkout() -> None:
    """What the next test proves holds for the install the guide describes, not some other one."""
    if os.environ.get("EDGE_AGENT_TEST_RELEASE"):
        pytest.skip("make test-arm64 tests the installed release (a wheel), by design not a checkout")
    direct = json.loads(distribution("edge-agent").read_text("direct_url.json") or "{}")
    assert direct.get("dir_info", {}).get("editable") is True, direct
    assert Path(direct["url"].removeprefix("file://")).resolve() == ROOT.resolve()


@pytest.mark.slow  # two mypy --strict runs: ~20 s
def test_mypy_strict_on_a_scaffolded_package_finds_edge_agent(tmp_path: Path) -> None:
    packages = [
        write_package("driver", "typed_i2c", tmp_path, bus="i2c"),
        write_package("plugin", "typed_watch", tmp_path),
    ]
    files = [str(f) for p in packages for f in sorted(p.rglob("*.py"))]
    cmd = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), *files]
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    env["MYPYPATH"] = os.pathsep.join(map(str, packages))  # the integrator's own package, nothing of ours
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert "import-not-found" not in proc.stdout, proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wrong = subprocess.run([*cmd[:6], "-c", _WRONG], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert '"ValueSpec" has incompatible type "int"; expected "str"' in wrong.stdout, wrong.stdout  # typed, not Any


_WRONG = "from edge_agent.drivers.contract import DType, ValueSpec\nValueSpec(key=1, dtype=DType.INT)\n"
