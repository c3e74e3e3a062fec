"""Which Unix device groups a config needs: the union of its drivers' declared ``device_access``.

``edge-agent device-groups CONFIG`` prints them, one per line; deploy/install.sh writes them into
the service's ``SupplementaryGroups=`` (intersected with the groups the host has).
"""

from __future__ import annotations

import argparse

from edge_agent.agent.config.schema import Config
from edge_agent.drivers.contract import device_groups


def config_groups(cfg: Config) -> list[str]:
    """Sorted groups every instance's driver needs with its options (sim backends need none)."""
    groups: set[str] = set()
    for inst in cfg.instances:
        if inst.driver is not None:
            groups |= device_groups(inst.driver, inst.driver_options)
    return sorted(groups)


def cmd_device_groups(args: argparse.Namespace) -> int:
    """Print the groups of a valid config; exit 1 with the errors of an invalid one."""
    from edge_agent.agent.config.registry import load_registry
    from edge_agent.agent.config.schema import load
    from edge_agent.agent.errors import ConfigError

    try:
        cfg = load(args.config, load_registry())
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.errors)} error(s)")
        for line in exc.errors:
            print(line)
        return 1
    for group in config_groups(cfg):
        print(group)
    return 0
