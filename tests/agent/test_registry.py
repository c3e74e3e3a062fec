"""Entry points as a third-party package installs them: a name clash with a built-in keeps the
built-in (warning, both listed); an entry-point name other than SPEC.name is refused."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_agent.agent.config.registry import Registry, load_registry
from edge_agent.drivers.sim.driver import SPEC as BUILTIN_SIM
from support import ROOT

MODULE = """
import dataclasses
from edge_agent.drivers.sim.driver import SPEC as _SIM
SPEC = dataclasses.replace(_SIM, description="acme's own sim")
OTHER = dataclasses.replace(_SIM, name="acme_other", description="named otherwise")
"""
ENTRY_POINTS = """[edge_agent.drivers]
sim = acme_sim:SPEC
acme_thing = acme_sim:OTHER
quoted = "acme_sim:SPEC"
"""


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A third-party distribution on sys.path (a dist-info folder, as pip installs one)."""
    (tmp_path / "acme_sim.py").write_text(MODULE)
    info = tmp_path / "acme_sim-2.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-sim\nVersion: 2.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    load_registry(refresh=True)


def test_a_third_party_entry_point_named_like_a_builtin_keeps_the_builtin(
    acme: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "edge_agent.registry"):
        reg: Registry = load_registry(refresh=True)
    assert reg.drivers["sim"] is BUILTIN_SIM
    assert reg.origins[("driver", "sim")].builtin
    assert [(o.dist, o.version) for o in reg.shadowed[("driver", "sim")]] == [("acme-sim", "2.1")]
    assert "driver 'sim' of acme-sim 2.1 (acme_sim:SPEC) is ignored: the built-in driver registers" in caplog.text


def test_an_entry_point_name_other_than_the_spec_name_is_refused(acme: Path) -> None:
    reg = load_registry(refresh=True)
    assert "acme_thing" not in reg.drivers
    assert reg.broken[("driver", "acme_thing")] == (
        "RegistryError: entry point 'acme_thing' (acme_sim:OTHER) registers a spec named 'acme_other'; "
        "the entry-point name must equal SPEC.name"
    )


def test_a_malformed_entry_point_value_is_named(acme: Path) -> None:
    reg = load_registry(refresh=True)
    assert "quoted" not in reg.drivers
    assert reg.broken[("driver", "quoted")] == (
        "RegistryError: entry point 'quoted': '\"acme_sim:SPEC\"' is not 'package.module:ATTRIBUTE' "
        "(in entry_points.txt the value has no quotes; check the package's pyproject.toml)"
    )


@pytest.mark.slow
def test_the_listing_shows_both_and_the_refusal(acme: Path) -> None:
    env_path = f"{acme}:{ROOT}"
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", "drivers"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("sim ") and "built-in" in line for line in lines)
    assert any(line.startswith("sim ") and "SHADOWED acme-sim 2.1" in line for line in lines)
    assert any(line.startswith("acme_thing ") and "BROKEN" in line and "must equal SPEC.name" in line for line in lines)
