"""One import name: the code folders load only as ``edge_agent.*``, never as bare top-level names.

From the repository root ``agent/`` is also visible as a top-level package ``agent``; importing it
that way would load a second copy of every module beside ``edge_agent.agent`` (two registries,
two sets of classes that ``isinstance`` tells apart). Each folder's ``__init__`` refuses it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import ROOT

pytestmark = pytest.mark.slow  # each test starts a Python subprocess

BARE = ["agent", "agent.cli", "drivers", "drivers.contract", "plugins", "plugins.contract"]


@pytest.mark.parametrize("name", BARE)
def test_a_bare_name_from_the_repository_root_is_refused_with_the_right_name(name: str) -> None:
    top = name.split(".")[0]
    code = f"import sys\ntry:\n    import {name}\nexcept ImportError as exc:\n    print(exc)\n    sys.exit(3)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 3, out.stdout + out.stderr
    assert f"import edge_agent.{top}, not {top}" in out.stdout, out.stdout
    assert not any(m == top or m.startswith(top + ".") for m in _loaded_after(name)), "a partial copy stayed loaded"


def _loaded_after(name: str) -> list[str]:
    """The modules loaded under bare names after a refused import (none may stay)."""
    code = f"import sys\ntry:\n    import {name}\nexcept ImportError:\n    pass\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return out.stdout.split()


def test_running_a_bare_package_from_the_repository_root_is_refused() -> None:
    """``python -m agent`` worked only because the root was the working directory (fixed last round)."""
    out = subprocess.run([sys.executable, "-m", "agent", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0 and "import edge_agent.agent, not agent" in out.stderr, out.stdout + out.stderr


def test_the_installed_names_still_load_from_the_repository_root() -> None:
    code = "import edge_agent.agent.cli, edge_agent.drivers.contract, edge_agent.plugins.contract; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "ok", out.stderr
