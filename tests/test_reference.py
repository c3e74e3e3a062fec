"""docs/reference/ is generated from the specs; a stale committed copy fails here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.devtools.reference_docs import render, stale
from support import ROOT


def test_the_committed_reference_is_what_the_specs_say() -> None:
    # The repository's copy, not DOCS (beside the code): against an installed release, as in
    # `make test-arm64`, the code lives in site-packages and carries no docs/.
    assert stale(ROOT / "docs" / "reference", render(load_registry())) == [], (
        "docs/reference/ is stale: run `make reference`"
    )


@pytest.mark.slow
def test_a_changed_spec_makes_the_reference_stale(tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = render(load_registry())
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert stale(tmp_path, files) == []
    (tmp_path / "driver-sim.md").write_text(files["driver-sim.md"].replace("`ch0`", "`ch00`"))
    (tmp_path / "driver-gone.md").write_text("")
    assert stale(tmp_path, files) == ["driver-sim.md", "driver-gone.md"]
    check = [sys.executable, "-m", "edge_agent.agent.devtools.reference_docs", "--check", str(tmp_path)]
    assert subprocess.run(check, capture_output=True, cwd=ROOT).returncode == 1


@pytest.mark.slow
def test_listings_print_options_schema_and_declared_values_as_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", "drivers", "--json"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    sim = next(d for d in json.loads(out.stdout) if d["name"] == "sim")
    assert sim["origin"]["builtin"] and sim["contract_version"] == "1.2" and sim["provides"] == ["values"]
    props = sim["options"]["$defs"]["SimOptions"]["properties"]
    assert props["channels"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1}
    assert sim["values"] == [
        {"key": "ch0", "dtype": "float32", "unit": "", "description": "simulated sine signal, channel 0"}
    ]


def test_every_example_of_a_builtin_is_valid_options() -> None:
    from edge_agent.agent.devtools.reference_docs import builtin_specs, example_options

    for kind, name, spec in builtin_specs(load_registry()):
        if spec.example is None:
            continue
        opts = example_options(spec)
        assert opts is not None, f"{kind} {name}: example does not validate"
        if spec.check is not None:
            problems = spec.check(opts) if kind == "driver" else spec.check(opts, None)
            assert problems == [], f"{kind} {name}: {problems}"
