"""The two layers of an agent's instance set: the local file, and the pushed layer on top.

The local file owns every section (``[agent]``, ``[mqtt]``, ``[remote]``, ``[spool]``) and its own
``[[instances]]``. A push owns only the *pushed layer*: a list of instance tables kept in
``state_dir/applied-config.json`` with its version. The effective instance set is the file's
instances with the pushed ones laid over them by name (a pushed table replaces the file's table of
the same name; ``enabled = false`` in a pushed table stops a file instance). An empty pushed layer
means "the file only". See docs/remote.md.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.agent.config.registry import Registry
from edge_agent.agent.config.schema import Config, Instance, build, canonical_hash, load

log = logging.getLogger("agent.layers")

APPLIED_FILE = "applied-config.json"
NONCE_KEEP = 2000  # most recent nonces remembered beyond their expiry check (bounded file)


@dataclass
class PushedLayer:
    """What pushes have set: the instance tables, their version and the bookkeeping around them."""

    version: int = 0
    instances: list[dict[str, Any]] = field(default_factory=list)
    desired_version: int = 0  # the newest desired version seen (agent or group topic)
    applied_ms: int = 0
    last_result: dict[str, Any] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)  # nonce -> expiry (Unix s), replay guard

    def remember(self, nonce: str, expires: int, now: float) -> None:
        """Keep a used nonce until it has expired (after that the expiry check rejects it)."""
        self.nonces = {n: e for n, e in self.nonces.items() if e >= now}
        self.nonces[nonce] = expires
        if len(self.nonces) > NONCE_KEEP:
            self.nonces = dict(sorted(self.nonces.items(), key=lambda kv: kv[1])[-NONCE_KEEP:])


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file, fsync, keep the previous file as .bak, rename: never a half file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():  # a hard link keeps the previous version with no moment without a file
        bak = path.with_name(path.name + ".bak")
        bak.unlink(missing_ok=True)
        os.link(path, bak)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_layer(state_dir: str | os.PathLike[str]) -> PushedLayer:
    """The stored pushed layer (or its .bak), or an empty one. A file written by an older agent
    (the whole config) keeps only its instances: its sections are never run (local precedence)."""
    state = Path(state_dir)
    for name in (APPLIED_FILE, APPLIED_FILE + ".bak"):
        path = state / name
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("instances", []), list):
                raise ValueError("not a map with an instances list")
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", path, exc)
            continue
        ignored = sorted(k for k in data if k in ("agent", "mqtt", "remote", "spool"))
        if ignored:
            log.warning("%s: ignoring stored [%s]: those come from the local file only", path, "], [".join(ignored))
        known = {k: data[k] for k in PushedLayer.__dataclass_fields__ if k in data}
        return PushedLayer(**known)
    return PushedLayer()


def save_layer(state_dir: str | os.PathLike[str], layer: PushedLayer) -> None:
    """Store the pushed layer atomically."""
    atomic_write(Path(state_dir) / APPLIED_FILE, json.dumps(asdict(layer), indent=1, sort_keys=True).encode())


def compose(file_raw: dict[str, Any], pushed: list[dict[str, Any]], version: int) -> dict[str, Any]:
    """The effective raw config: the file's sections, its instances overlaid by name with the pushed ones."""
    out = {k: v for k, v in file_raw.items() if k not in ("instances", "version")}
    by_name: dict[str, Any] = {}
    for table in [*file_raw.get("instances", []), *pushed]:
        key = table.get("name") if isinstance(table, dict) else None
        by_name[key if isinstance(key, str) else f"\0{len(by_name)}"] = table
    out["instances"] = list(by_name.values())
    out["version"] = version
    return out


def managed_by(file_raw: dict[str, Any], pushed: list[dict[str, Any]]) -> dict[str, str]:
    """For each instance name: ``file``, ``push`` or ``push (overrides file)``."""
    in_file = {t.get("name") for t in file_raw.get("instances", []) if isinstance(t, dict)}
    out = {str(n): "file" for n in in_file}
    for t in pushed:
        out[str(t.get("name"))] = "push (overrides file)" if t.get("name") in in_file else "push"
    return out


def effective(file_cfg: Config, layer: PushedLayer, reg: Registry) -> Config:
    """Build the effective config; raise ConfigError when the pushed layer does not fit."""
    raw = compose(file_cfg.raw, layer.instances, layer.version)
    return build(raw, reg, source="pushed config", base_dir=file_cfg.base_dir)


def load_effective(path: Path, reg: Registry) -> tuple[Config, Config, PushedLayer]:
    """(file config, effective config, pushed layer). When the stored layer no longer validates
    on top of the file, the file alone runs and the reason is logged."""
    from edge_agent.agent.errors import ConfigError

    file_cfg = load(path, reg)
    layer = load_layer(file_cfg.agent.state_dir)
    if not layer.instances and not layer.version:
        return file_cfg, effective(file_cfg, layer, reg), layer
    try:
        return file_cfg, effective(file_cfg, layer, reg), layer
    except ConfigError as exc:
        log.error(
            "the pushed config version %d does not fit the local file; running the file only:\n%s",
            layer.version,
            "\n".join(exc.errors),
        )
        layer.last_result = {"status": "rejected", "version": layer.version, "errors": exc.errors}
        layer.instances, layer.version = [], 0
        return file_cfg, effective(file_cfg, layer, reg), layer


def instances_hash(instances: Iterable[Instance]) -> str:
    """Hash of the effective instance set, sorted by name: equal on every agent running the same set."""
    return canonical_hash(sorted((i.raw for i in instances), key=lambda t: str(t.get("name"))))[:16]
