"""Configuration schema and loading: the agent's sections plus each plugin's and driver's own
options schema, validated as a whole, every error reported with its path."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import socket
import tomllib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from edge_agent.agent.config.declared_values import check_references
from edge_agent.agent.config.registry import Registry
from edge_agent.agent.config.validation import describe, did_you_mean, join, validate
from edge_agent.agent.errors import ConfigError
from edge_agent.agent.history.settings import HistorySection
from edge_agent.agent.sparkplug.settings import SparkplugSection
from edge_agent.agent.sparkplug.settings import check as check_sparkplug
from edge_agent.drivers.contract import RELATIVE_TO_CONFIG, DriverSpec, FilePath
from edge_agent.plugins.contract import PluginSpec

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PosFloat = Annotated[float, msgspec.Meta(gt=0)]


class AgentSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str = ""  # topic segment; default: the host name
    state_dir: str = "/var/lib/edge-agent"
    io_threads: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4  # unused since lanes; accepted for old configs
    max_lane_threads: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 64  # hard ceiling on driver-call threads
    stop_timeout_s: Annotated[float, msgspec.Meta(ge=1.0, le=600.0)] = 5.0  # SIGTERM -> exit within this
    # maintenance.sqlite written this often: ~16-24 kB of card writes a commit by the kernel's count;
    # a power cut loses one interval of counters (docs/deployment.md, "SD-card writes")
    state_flush_s: Annotated[float, msgspec.Meta(ge=1.0, le=3600.0)] = 300.0
    log_level: str = "info"
    # "auto": messages say "tq": "unsynced" until the kernel or timesyncd says the clock is synchronised;
    # "trust": never (an RTC or a time service the kernel does not report)
    clock_sync: Annotated[str, msgspec.Meta(pattern="^(auto|trust)$")] = "auto"
    groups: list[str] = []  # fleet groups: the agent also follows {prefix}/group/{g}/config/desired


class MqttSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = "mqtt://127.0.0.1:1883"
    prefix: str = "edge"
    username: str | None = None
    password_file: FilePath | None = None
    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
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
    allow_pushed_writes: list[str] = []  # instances whose pushed config may decide writes (agent/remote/write_gate.py)
    command_keys: dict[str, list[str]] = {}  # command name (or "change") -> keys that may sign it (authority.py)
    push_file_dirs: list[str] = []  # pushed FilePath options may read here (and state_dir): push_limits.py
    push_hosts: list[str] | None = None  # "HOST" or "HOST:PORT" a pushed instance may reach; None: the file's
    unsigned_sparkplug_writes: bool = False  # with require_signature: let DCMD writes through (broker ACL decides)
    max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    max_instances: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 200
    min_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    verify_timeout_s: PosFloat = 10.0
    capture_chunk_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1024 * 1024)] = 64 * 1024
    # inbound flood limit per subscription (config/set, cmd/+, NCMD...): beyond it messages are shed
    inbound_per_s: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 50.0
    inbound_burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100


class SpoolSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    max_mb: Annotated[float, msgspec.Meta(gt=0)] = 256.0
    commit_interval_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 200
    commit_messages: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500
    drain_rate_per_s: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    synchronous: Annotated[str, msgspec.Meta(pattern="^(NORMAL|FULL)$")] = "NORMAL"
    sync_interval_ms: Annotated[int, msgspec.Meta(ge=10, le=60_000)] = 1000  # background WAL fdatasync (NORMAL)
    memory_window: Annotated[int, msgspec.Meta(ge=10, le=1_000_000)] = 1000  # queued messages held in memory (one page)


class InstanceSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    plugin: str
    interval_s: PosFloat = 1.0
    driver: dict[str, Any] | None = None
    options: dict[str, Any] = {}
    qos: Annotated[int, msgspec.Meta(ge=0, le=1)] | None = None
    enabled: bool = True
    isolate: Literal["none", "process"] = "none"  # "process": the driver runs in a supervised child


class FileSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    version: Annotated[int, msgspec.Meta(ge=0)] = 0
    agent: AgentSection = msgspec.field(default_factory=AgentSection)
    mqtt: MqttSection = msgspec.field(default_factory=MqttSection)
    remote: RemoteSection = msgspec.field(default_factory=RemoteSection)
    spool: SpoolSection = msgspec.field(default_factory=SpoolSection)
    sparkplug: SparkplugSection = msgspec.field(default_factory=SparkplugSection)
    history: HistorySection = msgspec.field(default_factory=HistorySection)
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
    isolate: str = "none"  # "process": the driver runs in a child process (agent/runtime/process_isolation.py)

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
    base_dir: str | None = None  # relative file paths in the config are taken from here
    sparkplug: SparkplugSection = field(default_factory=SparkplugSection)
    history: HistorySection = field(default_factory=HistorySection)

    @property
    def agent_id(self) -> str:
        return self.agent.id or socket.gethostname().split(".")[0]

    @property
    def hash(self) -> str:
        """``config_hash``: the whole file as parsed (every section), first 16 hex digits."""
        return canonical_hash(self.raw)[:16]

    @property
    def instances_hash(self) -> str:
        """``instances_hash``: the instance set this file alone runs (see ``instances_hash()``)."""
        return instances_hash(self.instances)


def instances_hash(instances: Iterable[Instance]) -> str:
    """Hash of an effective instance set, sorted by name: equal on every agent running the same set
    whatever its id or file (docs/messages.md, "Two hashes")."""
    return canonical_hash(sorted((i.raw for i in instances), key=lambda t: str(t.get("name"))))[:16]


def canonical_hash(data: Any) -> str:
    """SHA-256 of the canonical JSON form (sorted keys): equal configs hash equal."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _is_file_path(tp: Any) -> bool:
    if typing.get_origin(tp) is Annotated:
        return any(m is RELATIVE_TO_CONFIG for m in typing.get_args(tp)[1:])
    return any(_is_file_path(a) for a in typing.get_args(tp))  # FilePath | None


@functools.lru_cache(maxsize=256)
def file_path_fields(cls: type) -> frozenset[str]:
    # No fallback: the registry refuses an options class whose annotations do not resolve
    # (check_options_type), so a FilePath option is never silently left relative.
    hints = typing.get_type_hints(cls, include_extras=True)
    return frozenset(name for name, tp in hints.items() if _is_file_path(tp))


def with_config_paths(table: Any, cls: type, base_dir: str | None) -> Any:
    """A copy of ``table`` whose relative ``FilePath`` options are joined to ``base_dir`` (the
    config file's directory), so they do not depend on the working directory."""
    if base_dir is None or not isinstance(table, dict):
        return table
    fields = file_path_fields(cls)
    out = dict(table)
    for name in fields & out.keys():
        value = out[name]
        if isinstance(value, str) and value and not os.path.isabs(value):
            out[name] = os.path.join(base_dir, value)
    return out


def _unknown(reg: Registry, kind: str, name: str) -> str:
    """Why a driver or plugin name is not usable: broken on install, or misspelt (nearest first)."""
    why = reg.broken.get((kind, name))
    if why:
        return f"installed but broken: {why}"
    installed = sorted(reg.drivers if kind == "driver" else reg.plugins)
    return f"{did_you_mean(name, installed)}installed: {', '.join(installed)}"


def instance_path(raw: Any, index: int, unique: bool) -> str:
    """Where an instance is in the file: by its name when it has a unique valid one
    (``instances["psu"]``), else by its position (``instances[2]``)."""
    name = raw.get("name") if isinstance(raw, dict) else None
    if unique and isinstance(name, str) and NAME_RE.match(name):
        return f'instances["{name}"]'
    return f"instances[{index}]"


def _driver(
    driver: dict[str, Any], path: str, reg: Registry, errors: list[str], base_dir: str | None = None
) -> tuple[Any, Any]:
    dpath = join(path, "driver")
    dtype = driver.get("type")
    if not isinstance(dtype, str):
        errors.append(f"{join(dpath, 'type')}: required key is missing (installed: {', '.join(sorted(reg.drivers))})")
        return None, None
    spec = reg.drivers.get(dtype)
    if spec is None:
        errors.append(f"{join(dpath, 'type')}: unknown driver {describe(dtype)} ({_unknown(reg, 'driver', dtype)})")
        return None, None
    body = with_config_paths({k: v for k, v in driver.items() if k != "type"}, spec.options, base_dir)
    opts = validate(body, spec.options, dpath, errors)
    if opts is not None and spec.check is not None:
        errors.extend(f"{join(dpath, m)}" if ":" in m else f"{dpath}: {m}" for m in spec.check(opts))
    return spec, opts


def _instance(
    raw: Any, path: str, reg: Registry, defaults: MqttSection, errors: list[str], base_dir: str | None = None
) -> Instance | None:
    """Validate one instance fully: its own keys, its plugin's options and its driver's options,
    even when some of them are wrong, so that every error shows at once."""
    before = len(errors)
    inst = validate(raw, InstanceSection, path, errors)
    if not isinstance(raw, dict):
        return None
    name, plugin = raw.get("name"), raw.get("plugin")
    if isinstance(name, str) and not NAME_RE.match(name):
        errors.append(
            f"{join(path, 'name')}: {describe(name)} is not a valid topic segment "
            "(letters, digits, _ . -; up to 64; no spaces, / + #)"
        )
    pspec = reg.plugins.get(plugin) if isinstance(plugin, str) else None
    if isinstance(plugin, str) and pspec is None:
        errors.append(f"{join(path, 'plugin')}: unknown plugin {describe(plugin)} ({_unknown(reg, 'plugin', plugin)})")
    driver = raw.get("driver")
    dspec, dopts = _driver(driver, path, reg, errors, base_dir) if isinstance(driver, dict) else (None, None)
    options = with_config_paths(raw.get("options", {}), pspec.options, base_dir) if pspec else raw.get("options", {})
    opts = (
        validate(options, pspec.options, join(path, "options"), errors) if pspec and isinstance(options, dict) else None
    )
    if pspec is not None:
        _check_pair(pspec, dspec, driver, opts, path, errors)
    if len(errors) > before or inst is None or pspec is None:
        return None
    qos = defaults.qos if inst.qos is None else inst.qos
    if inst.isolate == "process" and dspec is None:
        errors.append(f"{join(path, 'isolate')}: 'process' isolates a driver, and this instance has none")
        return None
    return (
        Instance(inst.name, pspec, dspec, inst.interval_s, qos, opts, dopts, raw, inst.isolate)
        if inst.enabled
        else None
    )


def _check_pair(
    pspec: PluginSpec, dspec: DriverSpec | None, driver: Any, opts: Any, path: str, errors: list[str]
) -> None:
    """Plugin/driver compatibility and the plugin's own cross-field checks."""
    if pspec.requires is not None and driver is None:
        errors.append(
            f"{join(path, 'driver')}: plugin {pspec.name!r} needs a driver providing {pspec.requires.value!r}"
        )
    elif pspec.requires is not None and dspec is not None and pspec.requires not in dspec.provides:
        provides = ", ".join(sorted(c.value for c in dspec.provides))
        errors.append(
            f"{join(path, 'driver.type')}: driver {dspec.name!r} provides {provides}, "
            f"plugin {pspec.name!r} needs {pspec.requires.value!r}"
        )
    if opts is not None and pspec.check is not None:
        errors.extend(f"{join(path, 'options')}.{m}" for m in pspec.check(opts, dspec.name if dspec else None))


def _check_agent(a: dict[str, Any], errors: list[str]) -> None:
    groups = a.get("groups")
    for i, g in enumerate(groups if isinstance(groups, list) else []):
        if isinstance(g, str) and not NAME_RE.match(g):
            errors.append(f"agent.groups[{i}]: {describe(g)} is not a valid topic segment")
    ident = a.get("id")
    if isinstance(ident, str) and ident and not NAME_RE.match(ident):
        errors.append(
            f"agent.id: {describe(ident)} is not a valid topic segment "
            "(letters, digits, _ . -; up to 64; no spaces, / + #)"
        )


def _check_mqtt(m: dict[str, Any], errors: list[str]) -> None:
    url, prefix = m.get("url"), m.get("prefix")
    if isinstance(url, str) and not re.match(r"^(mqtts?|tcp|ssl)://[^/:]+(:\d+)?/?$", url):
        errors.append(f"mqtt.url: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got {describe(url)}")
    if isinstance(prefix, str) and not NAME_RE.match(prefix):
        errors.append(f"mqtt.prefix: {describe(prefix)} is not a valid topic segment")
    lo, hi = m.get("reconnect_min_s", 1.0), m.get("reconnect_max_s", 60.0)
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
        errors.append("mqtt.reconnect_min_s: must not exceed mqtt.reconnect_max_s")
    if bool(m.get("cert_file")) != bool(m.get("key_file")):
        errors.append("mqtt.cert_file: cert_file and key_file go together")


SECTIONS: dict[str, tuple[type[msgspec.Struct], Any]] = {
    "agent": (AgentSection, _check_agent),
    "mqtt": (MqttSection, _check_mqtt),
    "remote": (RemoteSection, None),
    "spool": (SpoolSection, None),
    "sparkplug": (SparkplugSection, check_sparkplug),
    "history": (HistorySection, None),
}


def _sections(data: dict[str, Any], errors: list[str], base_dir: str | None = None) -> dict[str, Any]:
    """Validate every section on its own, so an error in one never hides those of another."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "version":
            out[key] = validate({"version": value}, FileSection, "", errors)
        elif key in SECTIONS:
            cls, check = SECTIONS[key]
            out[key] = validate(with_config_paths(value, cls, base_dir), cls, key, errors)
            if isinstance(value, dict) and check is not None:
                check(value, errors)
        elif key != "instances":
            errors.append(f"{key}: unknown key (allowed: {', '.join(sorted([*SECTIONS, 'instances', 'version']))})")
    return out


def build(
    data: Any, reg: Registry, *, source: str = "config", base_dir: str | os.PathLike[str] | None = None
) -> Config:
    """Validate parsed config data; raise ConfigError listing every problem with its path.
    ``base_dir``: where relative file paths point (the config file's directory; None: the
    working directory)."""
    errors: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError([f"(top): expected a table, got {describe(data)}"], source)
    base = None if base_dir is None else os.fspath(base_dir)
    sections = _sections(data, errors, base)
    mqtt = sections.get("mqtt") or MqttSection()
    raw_instances = data.get("instances", [])
    if not isinstance(raw_instances, list):
        errors.append(f"instances: expected an array of tables ([[instances]]), got {describe(raw_instances)}")
        raw_instances = []
    insts: list[Instance] = []
    paths: dict[str, tuple[Instance, str]] = {}
    seen: dict[str, int] = {}
    first_paths: dict[str, str] = {}
    for i, raw in enumerate(raw_instances):
        name = raw.get("name") if isinstance(raw, dict) else None
        path = instance_path(raw, i, unique=not (isinstance(name, str) and name in seen))
        if isinstance(name, str) and name in seen:
            errors.append(
                f"{join(path, 'name')}: duplicate instance name {describe(name)} (first used by {first_paths[name]})"
            )
        if isinstance(name, str):
            seen.setdefault(name, i)
            first_paths.setdefault(name, path)
        built = _instance(raw, path, reg, mqtt, errors, base)
        if built is not None:
            insts.append(built)
            paths.setdefault(built.name, (built, path))
    check_references(paths, seen, errors)
    if errors:
        raise ConfigError(errors, source)
    version = sections["version"].version if sections.get("version") else 0
    return Config(
        version,
        sections.get("agent") or AgentSection(),
        mqtt,
        sections.get("remote") or RemoteSection(),
        sections.get("spool") or SpoolSection(),
        tuple(insts),
        dict(data),
        source,
        base,
        sections.get("sparkplug") or SparkplugSection(),
        sections.get("history") or HistorySection(),
    )


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes a ConfigError with line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([toml_error(text, exc)], source) from exc


TOML_HINTS = (
    # (what tomllib says, what the user most likely did)
    (
        "Invalid initial character for a key part",
        "an inline table { ... } must stay on one line in TOML; "
        "for a longer driver table write it as a section: [instances.driver] with one key per line",
    ),
    (
        "Unclosed inline table",
        "an inline table { ... } must stay on one line in TOML; "
        "for a longer driver table write it as a section: [instances.driver] with one key per line",
    ),
    (
        "Cannot overwrite a value",
        "a key is given twice, or [instances.driver] follows a driver = { ... } of the "
        "same instance: keep one of the two forms",
    ),
    (
        "Cannot declare",
        "a table is declared twice: each [[instances]] starts a new instance; its sub-tables "
        "([instances.driver], [instances.options]) follow it once each",
    ),
    ("Invalid value", 'strings need quotes ("sim"), booleans are true/false, numbers have no units'),
    ("Expected '=' after a key", "a key needs = and a value; a string with spaces needs quotes"),
)


def toml_error(text: str, exc: tomllib.TOMLDecodeError) -> str:
    """A TOML syntax error with its line, that line's text and a hint for the usual cause."""
    msg = str(exc)
    match = re.search(r"\(at line (\d+), column \d+\)", msg)
    shown = ""
    if match:
        lines = text.splitlines()
        lineno = int(match.group(1))
        if 0 < lineno <= len(lines):
            shown = f": {lines[lineno - 1].strip()[:80]!r}"
    hint = next((h for key, h in TOML_HINTS if key in msg), "")
    return f"(syntax): {msg}{shown}" + (f" (hint: {hint})" if hint else "")


def load(path: str | os.PathLike[str], reg: Registry) -> Config:
    """Read, parse and validate a config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"(file): cannot read {p}: {exc}"], str(p)) from exc
    return build(parse_toml(text, str(p)), reg, source=str(p), base_dir=p.absolute().parent)
