"""Discovery of drivers and plugins through entry points; built-ins register the same way.

Every entry point is loaded and checked against its contract at start. One that fails to import
or does not meet the contract is listed as broken with the reason and cannot be named in a
config; it never takes the agent down (unless a config names it, which is then an error).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from drivers.contract import ENTRY_POINT_GROUP as DRIVER_GROUP
from drivers.contract import DriverSpec, check_driver_spec
from plugins.contract import ENTRY_POINT_GROUP as PLUGIN_GROUP
from plugins.contract import PluginSpec, check_plugin_spec


@dataclass(frozen=True)
class Origin:
    """Where a registered item comes from: distribution name and version, or "built-in"."""

    dist: str
    version: str
    target: str

    @property
    def builtin(self) -> bool:
        return self.dist == "edge-agent"


@dataclass
class Registry:
    plugins: dict[str, PluginSpec] = field(default_factory=dict)
    drivers: dict[str, DriverSpec] = field(default_factory=dict)
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)  # (kind, name) -> origin
    broken: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> reason

    def add_plugin(self, spec: PluginSpec, origin: Origin | None = None) -> None:
        """Register a plugin spec (tests and embedders); checked against the contract."""
        check_plugin_spec(spec, f"plugin {spec.name!r}" if isinstance(spec, PluginSpec) else "plugin")
        self.plugins[spec.name] = spec
        self.origins[("plugin", spec.name)] = origin or Origin("(added)", "", "")

    def add_driver(self, spec: DriverSpec, origin: Origin | None = None) -> None:
        """Register a driver spec (tests and embedders); checked against the contract."""
        check_driver_spec(spec, f"driver {spec.name!r}" if isinstance(spec, DriverSpec) else "driver")
        self.drivers[spec.name] = spec
        self.origins[("driver", spec.name)] = origin or Origin("(added)", "", "")


def _origin(ep: EntryPoint) -> Origin:
    dist = ep.dist
    return Origin(dist.name if dist else "?", dist.version if dist else "?", ep.value)


def _load(reg: Registry, kind: str, eps: Iterable[EntryPoint]) -> None:
    for ep in eps:
        source = f"{kind} {ep.name!r} ({ep.value})"
        try:
            obj = ep.load()
            if kind == "plugin":
                spec_p = check_plugin_spec(obj, source)
                reg.plugins[ep.name] = spec_p
            else:
                spec_d = check_driver_spec(obj, source)
                reg.drivers[ep.name] = spec_d
            reg.origins[(kind, ep.name)] = _origin(ep)
        except Exception as exc:  # a broken third-party package must not stop the agent
            reg.broken[(kind, ep.name)] = f"{type(exc).__name__}: {exc}"
            reg.origins[(kind, ep.name)] = _origin(ep)


_cached: Registry | None = None


def load_registry(*, refresh: bool = False) -> Registry:
    """Load every installed driver and plugin once per process."""
    global _cached
    if _cached is None or refresh:
        reg = Registry()
        _load(reg, "driver", entry_points(group=DRIVER_GROUP))
        _load(reg, "plugin", entry_points(group=PLUGIN_GROUP))
        _cached = reg
    return _cached
