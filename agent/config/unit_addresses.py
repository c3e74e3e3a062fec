"""``edge-agent unit-addresses CONFIG``: the systemd drop-in that lets the agent reach the hosts its
config names outside the plant's private networks.

The unit allows IP traffic only with this host, link-local and the private ranges (IPAddressDeny=any
plus IPAddressAllow=); a broker or device elsewhere (a cloud broker, a public address) needs its
addresses added. This prints them (names resolved now, at install time) as a drop-in, or nothing
when every host is already allowed; install.sh writes it to edge-agent.service.d/20-addresses.conf.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
from urllib.parse import urlsplit

from edge_agent.agent.config.registry import Registry
from edge_agent.agent.config.schema import Config

# what systemd/edge-agent.service allows already (IPAddressAllow=localhost link-local and the private ranges)
UNIT_ALLOWED: tuple[str, ...] = ("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10")
UNIT_ALLOWED += ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


def config_hosts(cfg: Config, reg: Registry) -> list[str]:
    """The broker's host, every host an instance names, and [remote] push_hosts (without ports)."""
    from edge_agent.agent.remote.push_limits import allowed_hosts

    hosts = [urlsplit(cfg.mqtt.url).hostname or ""]
    hosts += [h.rsplit(":", 1)[0] if h.count(":") == 1 else h for h in allowed_hosts(cfg, reg)]
    return sorted({h.strip("[]") for h in hosts if h})


def addresses(host: str) -> list[str]:
    """The IP addresses of a host: itself when it is one, else what it resolves to now."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos})


def outside_unit(address: str) -> bool:
    """True when the unit's own IPAddressAllow= does not cover the address."""
    ip = ipaddress.ip_address(address)
    return not any(
        ip in ipaddress.ip_network(net) for net in UNIT_ALLOWED if ipaddress.ip_network(net).version == ip.version
    )


def drop_in(cfg: Config, reg: Registry) -> tuple[str, list[str]]:
    """(the drop-in text or "", hosts that did not resolve)."""
    extra: list[str] = []
    unresolved: list[str] = []
    for host in config_hosts(cfg, reg):
        found = addresses(host)
        if not found:
            unresolved.append(host)
        extra += [a for a in found if outside_unit(a) and a not in extra]
    if not extra:
        return "", unresolved
    text = (
        "# Written by install.sh (edge-agent unit-addresses): hosts of the config outside the private\n"
        "# ranges the unit allows, resolved at install time. Re-run install.sh when they change.\n"
        f"[Service]\nIPAddressAllow={' '.join(extra)}\n"
    )
    return text, unresolved


def cmd_unit_addresses(args: argparse.Namespace) -> int:
    """Print the drop-in (or nothing); exit 1 with the errors of an invalid config."""
    import sys

    from edge_agent.agent.config.registry import load_registry
    from edge_agent.agent.config.schema import load
    from edge_agent.agent.errors import ConfigError

    reg = load_registry()
    try:
        cfg = load(args.config, reg)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.errors)} error(s)\n" + "\n".join(exc.errors), file=sys.stderr)
        return 1
    text, unresolved = drop_in(cfg, reg)
    for host in unresolved:
        print(
            f"unit-addresses: {host} does not resolve now; the unit lets the agent reach it only if it "
            "is in a private range",
            file=sys.stderr,
        )
    print(text, end="")
    return 0
