"""The typed contract seen by an integrator's type checker: ``mypy --strict`` on a package
catches a plugin that expects the wrong reading type."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs mypy in a subprocess

PACKAGE = """
from __future__ import annotations

from edge_agent.drivers.contract import Capability, Values, Waveform
from edge_agent.plugins.contract import Options, Plugin, PluginSpec

class Opts(Options):
    limit: float = 1.0


class Wave(Plugin[Opts, Waveform]):
    async def poll(self) -> None:
        block = await self.ctx.read()
        self.ctx.emit({"n": len(block.samples), "limit": self.ctx.options.limit})


class Vals(Plugin[Opts, Values]):
    async def poll(self) -> None:
        reading = await self.ctx.read()
        self.ctx.emit({"n": len(reading.samples)})


GOOD = PluginSpec(name="wave", factory=Wave, options=Opts, requires=Capability.WAVEFORM, reading=Waveform)
BAD = PluginSpec(name="vals", factory=Wave, options=Opts, requires=Capability.VALUES, reading=Values)
"""


def test_mypy_strict_catches_a_plugin_that_expects_the_wrong_reading(tmp_path: Path) -> None:
    (tmp_path / "mypkg.py").write_text(PACKAGE)  # edge_agent.* is found through the (editable) install
    cmd = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary"]
    cmd += ["--cache-dir", str(tmp_path / "cache"), "mypkg.py"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={})
    errors = sorted(line.split(": error: ")[1] for line in out.stdout.splitlines() if ": error: " in line)
    assert errors == [
        '"Values" has no attribute "samples"  [attr-defined]',
        'Argument "factory" to "PluginSpec" has incompatible type "type[Wave]"; expected '
        '"Callable[[PluginContext[Opts, Values]], Plugin[Opts, Values]]"  [arg-type]',
    ], out.stdout + out.stderr
