"""Configuration schema and loading: the agent's sections plus each plugin's and driver's own
options schema, validated as a whole, every error reported with its path."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec

from agent.errors import ConfigError
from agent.registry import Registry
from agent.validate import describe, join, validate
from drivers.contract import DriverSpec
from plugins.contract import PluginSpec

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PosFloat = Annotated[float, msgspec.Meta(gt=0)]


class AgentSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str = ""  # topic segment; default: the host name
    state_dir: str = "/var/lib/edge-agent"
    io_threads: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    log_level: str = "info"


class MqttSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = "mqtt://127.0.0.1:1883"
    prefix: str = "edge"
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 30
    qos: Annotated[int, msgspec.Meta(ge=0, le=1)] = 1
    queue_max: Annotated[int, msgspec.Meta(ge=10, le=10_000_000)] = 20_000
    max_inflight: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 100
    reconnect_min_s: PosFloat = 1.0
    reconnect_max_s: PosFloat = 60.0
    float_precision: Annotated[str, msgspec.Meta(pattern="^(single|double)$")] = "single"


class RemoteSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    allow_restart_sections: bool = False
    require_signature: bool = False
    trusted_keys: list[str] = []  # Ed25519 public keys, base64 or paths to PEM files
    max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    max_instances: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 200
    min_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    verify_timeout_s: PosFloat = 10.0
    capture_chunk_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1024 * 1024)] = 64 * 1024


class SpoolSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    max_mb: Annotated[float, msgspec.Meta(gt=0)] = 256.0
    commit_interval_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 200
    commit_messages: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500
    drain_rate_per_s: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    synchronous: Annotated[str, msgspec.Meta(pattern="^(NORMAL|FULL)$")] = "NORMAL"


class InstanceSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    plugin: str
    interval_s: PosFloat = 1.0
    driver: dict[str, Any] | None = None
    options: dict[str, Any] = {}
    qos: Annotated[int, msgspec.Meta(ge=0, le=1)] | None = None
    enabled: bool = True


class FileSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    version: Annotated[int, msgspec.Meta(ge=0)] = 0
    agent: AgentSection = msgspec.field(default_factory=AgentSection)
    mqtt: MqttSection = msgspec.field(default_factory=MqttSection)
    remote: RemoteSection = msgspec.field(default_factory=RemoteSection)
    spool: SpoolSection = msgspec.field(default_factory=SpoolSection)
    instances: list[InstanceSection] = []


@dataclass(frozen=True)
class Instance:
    """One validated plugin instance, ready for the runtime to build."""

    name: str
    plugin: PluginSpec
    driver: DriverSpec | None
    interval_s: float
    qos: int
    options: Any
    driver_options: Any
    raw: dict[str, Any]  # the instance's table as written, for diffs and hashes

    @property
    def fingerprint(self) -> str:
        return canonical_hash(self.raw)


@dataclass(frozen=True)
class Config:
    version: int
    agent: AgentSection
    mqtt: MqttSection
    remote: RemoteSection
    spool: SpoolSection
    instances: tuple[Instance, ...]
    raw: dict[str, Any]
    source: str

    @property
    def agent_id(self) -> str:
        return self.agent.id or socket.gethostname().split(".")[0]

    @property
    def hash(self) -> str:
        return canonical_hash(self.raw)[:16]


def canonical_hash(data: Any) -> str:
    """SHA-256 of the canonical JSON form (sorted keys): equal configs hash equal."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _driver(inst: InstanceSection, path: str, reg: Registry, errors: list[str]) -> tuple[Any, Any]:
    if inst.driver is None:
        return None, None
    dpath = join(path, "driver")
    dtype = inst.driver.get("type")
    if not isinstance(dtype, str):
        errors.append(f"{join(dpath, 'type')}: required key is missing (installed: {', '.join(sorted(reg.drivers))})")
        return None, None
    spec = reg.drivers.get(dtype)
    if spec is None:
        why = reg.broken.get(("driver", dtype))
        hint = f"installed but broken: {why}" if why else f"installed: {', '.join(sorted(reg.drivers))}"
        errors.append(f"{join(dpath, 'type')}: unknown driver {describe(dtype)} ({hint})")
        return None, None
    body = {k: v for k, v in inst.driver.items() if k != "type"}
    opts = validate(body, spec.options, dpath, errors)
    if opts is not None and spec.check is not None:
        errors.extend(f"{join(dpath, m)}" if ":" in m else f"{dpath}: {m}" for m in spec.check(opts))
    return spec, opts


def _instance(
    inst: InstanceSection, raw: dict[str, Any], path: str, reg: Registry, defaults: MqttSection, errors: list[str]
) -> Instance | None:
    before = len(errors)
    if not NAME_RE.match(inst.name):
        errors.append(f"{join(path, 'name')}: {describe(inst.name)} is not a valid topic segment "
                      "(letters, digits, _ . -; up to 64; no spaces, / + #)")
    pspec = reg.plugins.get(inst.plugin)
    if pspec is None:
        why = reg.broken.get(("plugin", inst.plugin))
        hint = f"installed but broken: {why}" if why else f"installed: {', '.join(sorted(reg.plugins))}"
        errors.append(f"{join(path, 'plugin')}: unknown plugin {describe(inst.plugin)} ({hint})")
    dspec, dopts = _driver(inst, path, reg, errors)
    if pspec is None:
        return None
    opts = validate(inst.options, pspec.options, join(path, "options"), errors)
    if pspec.requires is not None and inst.driver is None:
        errors.append(f"{join(path, 'driver')}: plugin {pspec.name!r} needs a driver providing "
                      f"{pspec.requires.value!r}")
    elif pspec.requires is not None and dspec is not None and pspec.requires not in dspec.provides:
        provides = ", ".join(sorted(c.value for c in dspec.provides))
        errors.append(f"{join(path, 'driver.type')}: driver {dspec.name!r} provides {provides}, "
                      f"plugin {pspec.name!r} needs {pspec.requires.value!r}")
    if opts is not None and pspec.check is not None:
        errors.extend(f"{join(path, 'options')}.{m}" for m in pspec.check(opts, dspec.name if dspec else None))
    if len(errors) > before:
        return None
    qos = defaults.qos if inst.qos is None else inst.qos
    return Instance(inst.name, pspec, dspec, inst.interval_s, qos, opts, dopts, raw)


def _check_sections(cfg: FileSection, errors: list[str]) -> None:
    if not re.match(r"^(mqtts?|tcp|ssl)://[^/:]+(:\d+)?/?$", cfg.mqtt.url):
        errors.append(f"mqtt.url: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got {describe(cfg.mqtt.url)}")
    if cfg.agent.id and not NAME_RE.match(cfg.agent.id):
        errors.append(f"agent.id: {describe(cfg.agent.id)} is not a valid topic segment")
    if not NAME_RE.match(cfg.mqtt.prefix) or "/" in cfg.mqtt.prefix:
        errors.append(f"mqtt.prefix: {describe(cfg.mqtt.prefix)} is not a valid topic segment")
    if cfg.mqtt.reconnect_min_s > cfg.mqtt.reconnect_max_s:
        errors.append("mqtt.reconnect_min_s: must not exceed mqtt.reconnect_max_s")
    if bool(cfg.mqtt.cert_file) != bool(cfg.mqtt.key_file):
        errors.append("mqtt.cert_file: cert_file and key_file go together")


def build(data: Any, reg: Registry, *, source: str = "config") -> Config:
    """Validate parsed config data; raise ConfigError listing every problem with its path."""
    errors: list[str] = []
    sections = dict(data) if isinstance(data, dict) else data
    raw_instances = sections.get("instances", []) if isinstance(sections, dict) else []
    top = validate(sections, FileSection, "", errors)
    if top is None:
        _instances_only(raw_instances, reg, errors)
        raise ConfigError(errors, source)
    _check_sections(top, errors)
    insts: list[Instance] = []
    seen: dict[str, int] = {}
    for i, (inst, raw) in enumerate(zip(top.instances, raw_instances, strict=True)):
        path = f"instances[{i}]"
        if inst.name in seen:
            errors.append(f"{join(path, 'name')}: duplicate instance name {describe(inst.name)} "
                          f"(first used by instances[{seen[inst.name]}])")
        seen.setdefault(inst.name, i)
        built = _instance(inst, raw, path, reg, top.mqtt, errors)
        if built is not None and inst.enabled:
            insts.append(built)
    if errors:
        raise ConfigError(errors, source)
    return Config(top.version, top.agent, top.mqtt, top.remote, top.spool, tuple(insts), dict(data), source)


def _instances_only(raw_instances: Any, reg: Registry, errors: list[str]) -> None:
    """When the top level failed, still check each well-formed instance so every error shows."""
    if not isinstance(raw_instances, list):
        return
    defaults = MqttSection()
    for i, raw in enumerate(raw_instances):
        inst = validate(raw, InstanceSection, f"instances[{i}]", [])
        if inst is not None:
            _instance(inst, raw, f"instances[{i}]", reg, defaults, errors)


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes a ConfigError with line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"(syntax): {exc}"], source) from exc


def load(path: str | os.PathLike[str], reg: Registry) -> Config:
    """Read, parse and validate a config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"(file): cannot read {p}: {exc}"], str(p)) from exc
    return build(parse_toml(text, str(p)), reg, source=str(p))
