"""The agent's control surface: the small interface remote config and commands talk to.

It owns the two layers (local file, pushed layer), applies changes through the one apply path
(agent/runtime/apply.py) and reports what runs. Remote config and commands see only ``AgentControl``'s
public methods; the runtime sees only ``ControlHost`` (no import cycle, no private attributes).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from edge_agent.agent.config.layers import (
    PushedLayer,
    effective,
    effective_checked,
    managed_by,
    save_layer,
)
from edge_agent.agent.config.registry import Registry
from edge_agent.agent.config.schema import Config, build, instances_hash, load
from edge_agent.agent.errors import ConfigError
from edge_agent.agent.remote.signing import KeyRing, TrustedKeyError
from edge_agent.agent.runtime import apply as apply_path
from edge_agent.plugins.contract import AgentStats

log = logging.getLogger("agent.control")

RESTART_SECTIONS = ("agent", "mqtt", "spool", "sparkplug", "history")
RESULTS_KEPT = 5  # config/state.results: the last answers, so a rejection is not hidden by a later no-op


class ControlHost(apply_path.InstanceHost, Protocol):
    """What the control needs from the runtime beyond the instances."""

    config: Config

    def instance_states(self) -> dict[str, dict[str, Any]]: ...

    def publish_state(self, *, status: bool = True) -> None: ...

    def stats(self) -> AgentStats: ...


class Rejected(Exception):
    """A change refused before anything changes; ``errors`` are "path: message" lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.ident: str | int | None = None  # the push's id, when it could be read


class AgentControl:
    """Applies file reloads and pushes to the runtime's instance set, one at a time."""

    def __init__(
        self,
        host: ControlHost,
        registry: Registry,
        *,
        file_config: Config,
        layer: PushedLayer,
        config_path: Path | None = None,
    ) -> None:
        self.host = host
        self.registry = registry
        self.file_config = file_config
        self.layer = layer
        self.config_path = config_path
        self.restart_required: list[str] = []
        self.on_reload: list[Callable[[], None]] = []  # run by every reload, SIGHUP or cmd (key caches)
        # One change of the instance set at a time (push, reload, restart): two restarts of one
        # instance interleaving their stop and start used to leave two copies polling the device.
        self.changes = asyncio.Lock()
        self.restarts_started: dict[str, int] = {}  # per running instance: restarts begun (coalescing)
        self.results: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)  # newest last, not stored
        if layer.last_result:
            self.results.append(_entry(layer.last_result))
        self._keys = KeyRing()  # for the key ids config/state lists
        if file_config.remote.allow_restart_sections:
            log.warning("[remote] allow_restart_sections is ignored: sections come from the local file only")

    @property
    def config(self) -> Config:
        """The effective config that runs now."""
        return self.host.config

    @property
    def remote(self) -> Any:
        """The [remote] section: always the local file's."""
        return self.file_config.remote

    # --- pushes -----------------------------------------------------------------------
    async def apply_layer(self, layer: PushedLayer, *, check_s: float | None, force: bool) -> dict[str, Any]:
        """Apply a new pushed layer; raise Rejected when it does not validate on top of the file."""
        async with self.changes:
            return await self._apply_layer(layer, check_s=check_s, force=force)

    async def _apply_layer(self, layer: PushedLayer, *, check_s: float | None, force: bool) -> dict[str, Any]:
        try:  # on its own first, so that errors carry the push's own paths
            build({"instances": layer.instances}, self.registry, source="push", base_dir=self.file_config.base_dir)
            new = effective(self.file_config, layer, self.registry)
        except ConfigError as exc:
            raise Rejected(exc.errors) from exc
        pushed = frozenset(str(t.get("name")) for t in layer.instances) if force else frozenset()
        outcome = await apply_path.apply(self.host, self.config, new, prove=True, check_s=check_s, force=pushed)
        if outcome.status != "accepted":
            self.host.publish_state(status=False)
            return {
                "status": "rolled_back",
                "reason": outcome.reason,
                "version": self.layer.version,  # still applied
                "attempted": layer.version,
            }
        self.layer = layer
        self.layer.applied_ms = int(time.time() * 1000)
        self.host.config = new
        return {
            "status": "accepted",
            "version": layer.version,
            "instances_hash": self.hash,
            "instances": outcome.summary,
        }

    def commit(self, result: dict[str, Any]) -> None:
        """Store the layer with its last result and publish the reported state."""
        self.layer.last_result = _short(result)
        self.results.append(_entry(self.layer.last_result))
        save_layer(self.file_config.agent.state_dir, self.layer)
        self.host.publish_state()

    def note_result(self, result: dict[str, Any], *, store: bool = True) -> None:
        """Remember a rejected or rolled-back result in the reported state (and the stored layer)."""
        self.layer.last_result = _short(result)
        self.results.append(_entry(self.layer.last_result))
        if store:
            save_layer(self.file_config.agent.state_dir, self.layer)
        self.host.publish_state(status=False)

    # --- the local file ---------------------------------------------------------------
    async def reload_file(self) -> dict[str, Any]:
        """SIGHUP / cmd reload: re-read the file; its sections win, the pushed layer stays on top."""
        async with self.changes:
            return await self._reload_file()

    async def _reload_file(self) -> dict[str, Any]:
        for reset in self.on_reload:  # key files may have been replaced even when the file did not change
            reset()
        if self.config_path is None:
            return {"reloaded": False, "reason": "no config file (started without -c)"}
        try:
            new_file = load(self.config_path, self.registry)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config:\n%s", "\n".join(exc.errors))
            return {"reloaded": False, "errors": exc.errors}
        self.restart_required = [k for k in RESTART_SECTIONS if getattr(new_file, k) != getattr(self.file_config, k)]
        if self.restart_required:
            log.warning("reload: [%s] changed: takes effect after a restart", "], [".join(self.restart_required))
        old_file, self.file_config = self.file_config, new_file
        try:
            new = effective_checked(new_file, self.layer, self.registry)
        except ConfigError as exc:
            log.error(
                "reload: the pushed config version %d no longer fits the file; running the file only:\n%s",
                self.layer.version,
                "\n".join(exc.errors),
            )
            self.layer = PushedLayer(last_result={"status": "rejected", "errors": exc.errors, "by": "reload"})
            new = effective(new_file, self.layer, self.registry)
        # keep the sections the running session was built with; [remote] applies at once
        new = replace(new, agent=self.config.agent, mqtt=self.config.mqtt, spool=self.config.spool)
        outcome = await apply_path.apply(self.host, self.config, new, prove=False)
        self.host.config = new
        shadowed = self._shadowed(old_file, new_file)
        if shadowed:
            log.warning(
                "reload: file changes to %s are overridden by the pushed config version %d",
                ", ".join(shadowed),
                self.layer.version,
            )
        self.host.publish_state()  # the stored layer stays as it is: a reload never discards a push
        return {
            "reloaded": True,
            "instances": outcome.summary,
            "overridden_by_push": shadowed,
            "restart_required": self.restart_required,
        }

    def _shadowed(self, old_file: Config, new_file: Config) -> list[str]:
        """File instances whose change in the file does not run because a push overrides them."""
        pushed = {t.get("name") for t in self.layer.instances}
        old = {t.get("name"): t for t in old_file.raw.get("instances", []) if isinstance(t, dict)}
        new = {t.get("name"): t for t in new_file.raw.get("instances", []) if isinstance(t, dict)}
        return sorted(str(n) for n in new.keys() | old.keys() if n in pushed and new.get(n) != old.get(n))

    # --- commands ---------------------------------------------------------------------
    async def restart_instance(self, name: str) -> bool:
        """Stop and start one instance with its current config, one change at a time. Requests that
        wait while another restart of the instance begins are served by it (False: coalesced)."""
        asked = self.restarts_started.get(name, 0)
        async with self.changes:
            if self.restarts_started.get(name, 0) != asked:
                return False  # a restart that began after this request has run it
            entry = self.host.runners.get(name)
            if entry is None:
                raise LookupError(f"instance {name!r} is no longer running (removed while the restart waited)")
            self.restarts_started[name] = asked + 1
            await self.host.stop_instances([name])
            self.host.start_instance(entry[0].inst)
        self.restarts_started = {n: k for n, k in self.restarts_started.items() if n in self.host.runners}
        return True

    def instance_names(self) -> list[str]:
        """The instances of the effective config (also one that a restart has stopped for a moment)."""
        return sorted({i.name for i in self.config.instances} | set(self.host.runners))

    def plugin_of(self, name: str) -> Any:
        """The running plugin object of an instance (None while it starts or restarts)."""
        entry = self.host.runners.get(name)
        return entry[0].plugin if entry is not None else None

    def effective_config(self) -> dict[str, Any]:
        """The effective config as a plain table (what runs), for get-config."""
        raw = copy.deepcopy(self.config.raw)
        raw.pop("version", None)
        return {"version": self.layer.version, **raw}

    def stats(self) -> AgentStats:
        return self.host.stats()

    # --- reported state ---------------------------------------------------------------
    @property
    def hash(self) -> str:
        return instances_hash(self.config.instances)

    def state(self) -> dict[str, Any]:
        """The retained config/state payload: what the agent runs and the last result."""
        owners = managed_by(self.file_config.raw, self.layer.instances)
        instances = self.host.instance_states()
        for name, st in instances.items():
            st["managed_by"] = owners.get(name, "file")
        d: dict[str, Any] = {
            "version": self.layer.version,
            "desired_version": self.layer.desired_version,
            "instances_hash": self.hash,
            "hash": self.hash,  # the same as instances_hash; kept for consumers of 0.1 (removed in 0.3)
            "applied": self.layer.applied_ms,
            "pushed_hash": self.layer.hash,
            "instances": instances,
            "trusted_keys": self.trusted_kids(),
        }
        if self.layer.last_result:
            d["last_result"] = self.layer.last_result
        if self.results:
            d["results"] = list(self.results)
        if self.restart_required:
            d["restart_required"] = self.restart_required
        return d

    def trusted_kids(self) -> list[str]:
        """The key ids of [remote] trusted_keys (what fleet compares with a document's kid)."""
        try:
            return sorted(self._keys.keys(list(self.remote.trusted_keys)))
        except (TrustedKeyError, OSError):
            return []  # the push that needs them says why


def _entry(result: dict[str, Any]) -> dict[str, Any]:
    """One line of config/state.results: status, version, when and the first reason (bounded)."""
    keep: dict[str, Any] = {k: result[k] for k in ("status", "version", "attempted", "at", "via") if k in result}
    why = result.get("reason") or next(iter(result.get("errors") or []), "")
    if why:
        keep["why"] = str(why)[:100]
    return keep


def _short(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a result kept in the reported state (no long error lists)."""
    keep: dict[str, Any] = {
        k: result[k] for k in ("status", "version", "attempted", "reason", "id", "at", "via") if k in result
    }
    if "errors" in result:
        keep["errors"] = list(result["errors"])[:10]
    keep.setdefault("at", int(time.time() * 1000))
    return keep
