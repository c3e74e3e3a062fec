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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.agent.bounds import MAX_SAFE_INT, int_in, short, value_errors
from edge_agent.agent.config.registry import Registry
from edge_agent.agent.config.schema import Config, build, canonical_hash, load
from edge_agent.drivers.private_dirs import NotPrivate, claim, private_files

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
    # why a stored file was moved aside at load: reported once as an event, never stored
    faults: list[str] = field(default_factory=list, compare=False)

    @property
    def hash(self) -> str:
        """The pushed layer's content hash (``pushed_hash`` in config/state): what ``fleet`` compares."""
        return layer_hash(self.instances)

    def remember(self, nonce: str, expires: int, now: float) -> None:
        """Keep a used nonce until it has expired (after that the expiry check rejects it)."""
        self.nonces = {n: e for n, e in self.nonces.items() if e >= now}
        self.nonces[nonce] = expires
        if len(self.nonces) > NONCE_KEEP:
            self.nonces = dict(sorted(self.nonces.items(), key=lambda kv: kv[1])[-NONCE_KEEP:])


def layer_hash(instances: list[dict[str, Any]]) -> str:
    """Hash of pushed instance tables sorted by name: the agent reports it for its pushed layer, the
    fleet tool computes it over a desired document, so drift is found by content, not by version."""
    return canonical_hash(sorted(instances, key=lambda t: str(t.get("name"))))[:16]


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
    """The stored pushed layer (or its .bak), or an empty one. A file that does not load or holds
    values out of range is quarantined (moved aside, noted in ``faults``): a bad state file must
    never keep the agent from starting. A file written by an older agent (the whole config) keeps
    only its instances: its sections are never run (local precedence)."""
    state = Path(state_dir)
    faults: list[str] = []
    for name in (APPLIED_FILE, APPLIED_FILE + ".bak"):
        path = state / name
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            why = stored_layer_errors(data)
            if why:
                raise ValueError("; ".join(why))
        except (OSError, ValueError, RecursionError) as exc:
            faults.append(quarantine(path, str(exc)))
            continue
        ignored = sorted(k for k in data if k in ("agent", "mqtt", "remote", "spool"))
        if ignored:
            log.warning("%s: ignoring stored [%s]: those come from the local file only", path, "], [".join(ignored))
        known = {k: data[k] for k in PushedLayer.__dataclass_fields__ if k in data and k != "faults"}
        return PushedLayer(**known, faults=faults)
    last = {"status": "quarantined", "errors": faults[:3]} if faults else {}
    return PushedLayer(last_result=last, faults=faults)


def stored_layer_errors(data: Any) -> list[str]:
    """Why a stored layer cannot be used: wrong shape, or numbers no message could carry."""
    if not isinstance(data, dict) or not isinstance(data.get("instances", []), list):
        return ["not a map with an instances list"]
    errors = [
        f"{k}: must be an integer 0..{MAX_SAFE_INT}"
        for k in ("version", "desired_version", "applied_ms")
        if k in data and not int_in(data[k], 0, MAX_SAFE_INT)
    ]
    for k, kind in (("last_result", dict), ("nonces", dict)):
        if k in data and not isinstance(data[k], kind):
            errors.append(f"{k}: must be a map")
    if not all(isinstance(t, dict) for t in data.get("instances", [])):
        errors.append("instances: must be a list of tables")
    return errors + value_errors(data, "(file)")


def quarantine(path: Path, why: str) -> str:
    """Move a state file that cannot be used aside (kept for a person to look at); say what happened."""
    aside = path.with_name(f"{path.name}.quarantined-{int(time.time())}")
    try:
        os.replace(path, aside)
        note = f"{path} quarantined as {aside.name}: {short(why, 200)}"
    except OSError as exc:
        note = f"{path} unusable ({short(why, 200)}) and cannot be moved aside: {exc}"
    log.error("%s", note)
    return note


def save_layer(state_dir: str | os.PathLike[str], layer: PushedLayer) -> None:
    """Store the pushed layer atomically."""
    stored = {k: v for k, v in asdict(layer).items() if k != "faults"}
    atomic_write(Path(state_dir) / APPLIED_FILE, json.dumps(stored, indent=1, sort_keys=True).encode())


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


def effective_checked(file_cfg: Config, layer: PushedLayer, reg: Registry) -> Config:
    """``effective``, after checking what the stored layer may reach under the file as it is now
    (its [remote] push_file_dirs and push_hosts may have narrowed since the push): a file outside
    them is never opened, a host outside them never reached."""
    from edge_agent.agent.errors import ConfigError
    from edge_agent.agent.remote.push_limits import reach_errors

    reach = reach_errors(layer.instances, file_cfg, reg)
    if reach:
        raise ConfigError(reach, "pushed config")
    return effective(file_cfg, layer, reg)


def effective(file_cfg: Config, layer: PushedLayer, reg: Registry) -> Config:
    """Build the effective config; raise ConfigError when the pushed layer does not fit."""
    raw = compose(file_cfg.raw, layer.instances, layer.version)
    return build(raw, reg, source="pushed config", base_dir=file_cfg.base_dir)


def private_state_dir(file_cfg: Config) -> None:
    """The state directory, this user's and 0700 (created so, or tightened); ConfigError when another
    user owns it (a stored layer planted in a shared place such as /tmp would run as pushed)."""
    from edge_agent.agent.errors import ConfigError

    state_dir = file_cfg.agent.state_dir
    try:
        how = claim(state_dir)
    except NotPrivate as exc:
        raise ConfigError([f"agent.state_dir: {exc}"], file_cfg.source) from exc
    except OSError as exc:  # a read-only or full file system: the stores fall back to memory and say so
        log.error(
            "%s cannot be made private (%s): running on, the state stores report their own faults", state_dir, exc
        )
        return
    if how == "tightened":
        log.warning("%s was readable or writable by others: now 0700", state_dir)
    changed = private_files(state_dir)
    if changed:
        log.warning(
            "%s: %d file(s) were readable by others (an older version, umask 022): now 0600", state_dir, changed
        )


def load_effective(path: Path, reg: Registry) -> tuple[Config, Config, PushedLayer]:
    """(file config, effective config, pushed layer). When the stored layer no longer validates
    on top of the file, the file alone runs and the reason is logged."""
    from edge_agent.agent.errors import ConfigError

    file_cfg = load(path, reg)
    private_state_dir(file_cfg)
    layer = load_layer(file_cfg.agent.state_dir)
    if not layer.instances and not layer.version:
        return file_cfg, effective(file_cfg, layer, reg), layer
    try:
        return file_cfg, effective_checked(file_cfg, layer, reg), layer
    except ConfigError as exc:
        log.error(
            "the pushed config version %d does not fit the local file; running the file only:\n%s",
            layer.version,
            "\n".join(exc.errors),
        )
        layer.last_result = {"status": "rejected", "version": layer.version, "errors": exc.errors}
        layer.instances, layer.version = [], 0
        return file_cfg, effective(file_cfg, layer, reg), layer
