"""Every built-in driver and plugin package has the same shape: ``__init__.py`` with its ``SPEC``, its
code, and a README.md with a short description and one sample config that passes check-config.

A README either carries its own sample (``<!-- sample-config -->``) or shows an example file
(``<!-- sample-config: examples/snippets/x.toml -->``), whose text it must repeat exactly, so the
config a reader copies is the one the tests check."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import load
from edge_agent.agent.devtools.readme_samples import SAMPLE, refreshed
from edge_agent.agent.errors import ConfigError
from support import ROOT

AROUND = '[agent]\nid = "readme"\nstate_dir = "/tmp/edge-agent-readme"\n\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n\n'


def builtin_packages() -> list[Path]:
    """The folder of every built-in driver and plugin (``edge_agent.drivers.max318xx.max31855`` -> drivers/max318xx)."""
    found = set()
    for group in ("edge_agent.drivers", "edge_agent.plugins"):
        for ep in entry_points(group=group):
            parts = ep.value.split(":")[0].split(".")
            if parts[0] == "edge_agent":
                found.add(ROOT / parts[1] / parts[2])
    return sorted(found)


def snippet_instances() -> set[str]:
    """Instance names the example snippets define (a snippet may name another one's instance)."""
    return {
        i["name"]
        for p in (ROOT / "examples" / "snippets").glob("*.toml")
        for i in tomllib.loads(p.read_text())["instances"]
    }


def sample_problems(readme: Path, tmp: Path) -> list[str]:
    """What is wrong with one README's sample config (empty when it passes check-config)."""
    samples = list(SAMPLE.finditer(readme.read_text()))
    if len(samples) != 1:
        return [f"{readme}: {len(samples)} sample configs (want one ```toml block after <!-- sample-config -->)"]
    text, source = samples[0]["toml"], samples[0]["file"]
    if source and (ROOT / source).read_text() != text:
        return [f"{readme}: the sample differs from {source}: run make readmes"]
    path = tmp / f"{readme.parent.name}.toml"
    path.write_text(text if "[agent]" in text else AROUND + text)
    try:
        load(path, load_registry())
    except ConfigError as exc:
        others = snippet_instances()
        named = [re.search(r': no instance "([^"]+)" in this config', e) for e in exc.errors]
        return [f"{readme}: {e}" for e, m in zip(exc.errors, named, strict=True) if not (m and m.group(1) in others)]
    return []


def test_there_are_builtin_packages() -> None:
    assert len(builtin_packages()) >= 17


@pytest.mark.parametrize("package", builtin_packages(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_package_has_spec_code_and_readme_with_a_valid_sample(package: Path, tmp_path: Path) -> None:
    assert (package / "__init__.py").is_file()
    readme = package / "README.md"
    assert readme.is_file(), f"{package} has no README.md (a description and a sample config)"
    assert sample_problems(readme, tmp_path) == []


def test_a_broken_or_stale_sample_is_caught(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    readme = tmp_path / "pkg" / "README.md"
    readme.write_text('<!-- sample-config -->\n```toml\n[[instances]]\nname = "x"\nplugin = "nope"\n```\n')
    assert any("unknown plugin" in p for p in sample_problems(readme, tmp_path))
    readme.write_text("<!-- sample-config: examples/minimal.toml -->\n```toml\n# an old copy\n```\n")
    assert sample_problems(readme, tmp_path) == [
        f"{readme}: the sample differs from examples/minimal.toml: run make readmes"
    ]
    assert sample_problems(_write(readme, refreshed(readme.read_text())), tmp_path) == []
    readme.write_text("no sample at all\n")
    assert "0 sample configs" in sample_problems(readme, tmp_path)[0]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
