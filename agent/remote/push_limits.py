"""What a pushed instance may reach: files under directories the local file allows, and the hosts
and ports the local file names. Checked before a pushed layer is built, so a refused file is never
opened (``tags_csv = "/etc/passwd"`` used to put the file's first line into the retained state).

- Files: every driver and plugin option typed ``FilePath`` (drivers/contract.py) must resolve (after
  symlinks) under ``[agent] state_dir`` or one of ``[remote] push_file_dirs``; any other option
  given as an absolute path (``device``, ``sysfs_root``, ``serial_port``) there or under /dev or /sys
  (``serial_port = "/proc/self/environ"`` is refused, ``/dev/ttyUSB1`` is not).
- Hosts: an option named ``host`` (with its sibling ``port``) that a pushed table sets must match
  ``[remote] push_hosts`` (``"HOST"`` for any port, ``"HOST:PORT"``), by default the host/port pairs
  of the local file's own instances. Names are compared as written, never resolved.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import msgspec
from edge_agent.agent.config.registry import Registry
from edge_agent.agent.config.schema import Config, file_path_fields

DEVICE_DIRS = ("/dev", "/sys")  # device nodes and sysfs: hardware access, open to pushed instances


def _defaults(cls: type) -> dict[str, Any]:
    """The option class's field defaults (for host and port a table leaves out)."""
    fields = msgspec.structs.fields(cls) if issubclass(cls, msgspec.Struct) else ()
    return {f.name: f.default for f in fields if f.default is not msgspec.NODEFAULT}


def option_tables(table: dict[str, Any], reg: Registry) -> Iterator[tuple[str, type, dict[str, Any]]]:
    """(path, options class, table) of an instance's driver options and plugin options."""
    driver = table.get("driver")
    dtype = driver.get("type") if isinstance(driver, dict) else None
    dspec = reg.drivers.get(dtype) if isinstance(dtype, str) else None
    if dspec is not None and isinstance(driver, dict):
        yield "driver", dspec.options, driver
    plugin, options = table.get("plugin"), table.get("options")
    pspec = reg.plugins.get(plugin) if isinstance(plugin, str) else None
    if pspec is not None and isinstance(options, dict):
        yield "options", pspec.options, options


def _inside(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip(os.sep) + os.sep) for d in dirs)


def _paths(cls: type, table: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(option, value, extra allowed dirs): FilePath options, and any other option given as an
    absolute path (a device node, a sysfs root, a serial port), which may also be under /dev or /sys."""
    files = file_path_fields(cls)
    out: list[tuple[str, str, list[str]]] = []
    for name in sorted(table):
        value = table[name]
        if not isinstance(value, str) or not value:
            continue
        if name in files:
            out.append((name, value, []))
        elif value.startswith("/"):
            out.append((name, value, list(DEVICE_DIRS)))
    return out


def _file_errors(where: str, cls: type, table: dict[str, Any], base: str, dirs: list[str]) -> list[str]:
    errors = []
    for name, value, devices in _paths(cls, table):
        real = os.path.realpath(os.path.join(base, value))
        if not _inside(real, dirs + devices):
            errors.append(
                f"{where}.{name}: {value[:200]!r} is outside the directories a push may read "
                f"({', '.join(dirs)}; the local file's [remote] push_file_dirs adds more); the file was not read"
            )
    return errors


def _endpoint(cls: type, table: dict[str, Any]) -> tuple[str, Any] | None:
    """(host, port) a table sets explicitly (either of them), with the other from the defaults."""
    if "host" not in table and "port" not in table:
        return None
    defaults = _defaults(cls)
    if "host" not in defaults and "host" not in table:
        return None
    return str(table.get("host", defaults.get("host"))), table.get("port", defaults.get("port"))


def allowed_hosts(file_config: Config, reg: Registry) -> list[str]:
    """``[remote] push_hosts``, or the host:port pairs of the local file's own instances."""
    if file_config.remote.push_hosts is not None:
        return list(file_config.remote.push_hosts)
    out: list[str] = []
    for table in file_config.raw.get("instances", []):
        for _, cls, options in option_tables(table, reg) if isinstance(table, dict) else ():
            defaults = _defaults(cls)
            if "host" in options or "host" in defaults:
                host, port = options.get("host", defaults.get("host")), options.get("port", defaults.get("port"))
                out.append(f"{host}:{port}" if port is not None else str(host))
    return sorted(set(out))


def _host_ok(host: str, port: Any, allowed: list[str]) -> bool:
    wanted = {host.lower(), f"{host}:{port}".lower()}
    return any(a.lower() in wanted for a in allowed)


def reach_errors(instances: list[Any], file_config: Config, reg: Registry) -> list[str]:
    """Every file and host a pushed layer names that the local file does not allow ("path: why")."""
    base = file_config.base_dir or os.getcwd()
    dirs = [os.path.realpath(d) for d in (file_config.agent.state_dir, *file_config.remote.push_file_dirs)]
    hosts = allowed_hosts(file_config, reg)
    errors: list[str] = []
    for i, table in enumerate(instances):
        if not isinstance(table, dict):
            continue
        for part, cls, options in option_tables(table, reg):
            where = f"instances[{i}].{part}"
            errors += _file_errors(where, cls, options, base, dirs)
            endpoint = _endpoint(cls, options)
            if endpoint is not None and not _host_ok(*endpoint, hosts):
                errors.append(
                    f"{where}.host: {endpoint[0][:200]}:{endpoint[1]} is not a host this agent's pushes may reach "
                    f"(allowed: {', '.join(hosts) or 'none'}; set [remote] push_hosts in the local file)"
                )
    return errors


__all__ = ["allowed_hosts", "option_tables", "reach_errors"]
