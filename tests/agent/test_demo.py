"""`edge-agent demo`: the live view is changed only on the event loop (paho's thread hands over)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.devtools import demo

SMALL = """
[agent]
id = "demo-t"

[[instances]]
name = "sine"
plugin = "values"
interval_s = 0.2
driver = { type = "sim", profile = "sine", channels = 2 }
"""


@pytest.mark.slow
def test_live_view_is_only_changed_on_the_event_loop_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """paho delivers on its network thread while the loop iterates the view's dicts to render:
    every change must run on the thread that runs the loop (here the main thread)."""
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL)
    threads: list[int] = []
    original = demo.LiveView.add

    def recording_add(self: demo.LiveView, rec: dict[str, Any], size: int) -> None:
        threads.append(threading.get_ident())
        original(self, rec, size)

    monkeypatch.setattr(demo.LiveView, "add", recording_add)
    assert demo.run_demo(seconds=2.5, config=str(cfg), plain=True) == 0
    assert len(threads) >= 5, capsys.readouterr().out
    assert set(threads) == {threading.main_thread().ident}


def test_localize_moves_every_local_modbus_spelling_and_iio_device(tmp_path: Path) -> None:
    """Both option vocabularies of a local Modbus TCP PLC get a free port; kernel paths stay."""
    from edge_agent.agent.devtools.demo_plant import localize

    data: dict[str, Any] = {
        "instances": [
            {"name": "a", "driver": {"type": "modbus", "transport": "tcp", "port": 502}},
            {"name": "b", "driver": {"type": "modbus", "backend": "hw", "transport": "tcp", "port": 502}},
            {"name": "c", "driver": {"type": "modbus", "backend": "tcp", "port": 502}},
            {"name": "d", "driver": {"type": "modbus", "backend": "sim", "port": 502}},
            {"name": "e", "driver": {"type": "iio", "sysfs_root": "/sys/bus/iio/devices"}},
            {"name": "f", "driver": {"type": "iio", "sysfs_root": "/tmp/x/sys", "dev_dir": "/tmp/x/dev"}},
        ]
    }
    assert localize(data, tmp_path, tmp_path)
    drivers = {i["name"]: i["driver"] for i in data["instances"]}
    assert all(drivers[n]["port"] != 502 for n in "abc") and drivers["d"]["port"] == 502
    assert drivers["e"]["sysfs_root"] == "/sys/bus/iio/devices"
    assert drivers["f"]["sysfs_root"] == str(tmp_path / "sys") and drivers["f"]["dev_dir"] == str(tmp_path / "dev")


@pytest.mark.slow  # starts the panel process
def test_the_demo_panel_shows_the_plants_time_zone(tmp_path: Path) -> None:
    """The panel of ``make demo`` names the times in the reference plant's zone, as its reports do."""
    import tomllib
    from contextlib import ExitStack

    from edge_agent.agent.devtools.demo_maintenance import plant_zone
    from edge_agent.agent.devtools.demo_panel import start_panel
    from edge_agent.agent.ops.panel.security import load_config

    zone = plant_zone(tomllib.loads(demo.default_config().read_text(encoding="utf-8")))
    assert zone == "Europe/Berlin" and plant_zone({"instances": []}) == "UTC"
    with ExitStack() as stack:
        start_panel(tmp_path, "mqtt://127.0.0.1:9", "edge", stack, zone)
        assert load_config(tmp_path / "panel" / "panel.toml").panel.timezone == "Europe/Berlin"
