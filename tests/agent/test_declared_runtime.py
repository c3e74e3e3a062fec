"""The reference plant, simulated, on a real broker: every key each built-in emits is declared
with the dtype it has on the wire."""

from __future__ import annotations

import re
import time
from pathlib import Path

from edge_agent.agent.config.declared_values import declared, undeclared
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import load
from edge_agent.agent.devtools.local_broker import LocalBroker
from support import ROOT, AgentProcess, Subscriber

PLANT = ROOT / "examples" / "reference-plant.toml"
RUN_S = 12.0  # the system and production instances poll every 10 s


def _plant(tmp_path: Path) -> Path:
    text = PLANT.read_text()
    text = text.replace('state_dir = "/tmp/edge-agent-reference"', f'state_dir = "{tmp_path / "state"}"')
    text = text.replace('transport = "tcp"', 'backend = "sim"')  # the in-process simulated PLC
    # and the accelerometers' model in process instead of edge-agent plantsim
    text = re.sub(r'^type = "iio"$', 'type = "iio"\nbackend = "sim"', text, flags=re.M)
    assert 'backend = "sim"' in text
    path = tmp_path / "plant.toml"
    path.write_text(text)
    return path


def test_every_emitted_key_of_the_reference_plant_is_declared(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber
) -> None:
    config = load(_plant(tmp_path), load_registry())
    specs = {inst.name: declared(inst) for inst in config.instances}
    assert all(v is not None for v in specs.values()), "every built-in declares its values"
    prefix = f"edge/{config.agent_id}/data/"
    agent = AgentProcess(config_path := tmp_path / "plant.toml", broker.url)
    try:
        subscriber.wait_for(
            lambda: (
                {m.topic for m in subscriber.messages if m.topic.startswith(prefix)}
                >= {prefix + name for name in specs}
            ),
            60,
            "a data message from every instance",
        )
        time.sleep(max(0.0, RUN_S - (time.monotonic() - agent.started)))
    finally:
        assert agent.stop() == 0, agent.log()
    assert config_path.exists()
    problems: set[str] = set()
    seen: dict[str, set[str]] = {}
    for m in subscriber.messages:
        if m.topic.startswith(prefix):
            name = m.topic.removeprefix(prefix)
            problems.update(f"{name}: {p}" for p in undeclared(specs[name] or (), m.env["d"]))
            seen.setdefault(name, set()).update(m.env["d"])
    assert sorted(problems) == []
    assert set(seen) == set(specs)
