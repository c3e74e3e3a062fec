"""`edge-agent device-groups`: the groups a config needs come from its drivers' device_access."""

from __future__ import annotations

from pathlib import Path

import pytest
from edge_agent.agent.cli import main

CONFIG = """
[agent]
id = "t"

[[instances]]
name = "acc"
plugin = "vibration"
driver = {{ type = "adxl345", bus = "i2c", device = "/dev/i2c-1", rate_hz = 400, backend = "{backend}" }}

[[instances]]
name = "plc"
plugin = "plc"
driver = {{ type = "modbus", transport = "rtu", serial_port = "/dev/ttyUSB0", layout = "reference" }}

[[instances]]
name = "sim"
plugin = "values"
driver = {{ type = "sim" }}
"""


@pytest.mark.parametrize(("backend", "groups"), [("hw", ["dialout", "i2c"]), ("sim", ["dialout"])])
def test_groups_come_from_the_drivers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str, groups: list[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(backend=backend))
    assert main(["device-groups", str(path)]) == 0
    assert capsys.readouterr().out.split() == groups


def test_an_invalid_config_is_refused_with_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[instances]]\nname = "x"\nplugin = "values"\ndriver = { type = "nope" }\n')
    assert main(["device-groups", str(path)]) == 1
    assert 'instances["x"].driver' in capsys.readouterr().out
