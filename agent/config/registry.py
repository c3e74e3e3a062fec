"""Discovery of drivers and plugins through entry points; built-ins register the same way.

Entry points are listed at start but a module is imported only when a config names it (or when
``edge-agent plugins``/``drivers`` lists everything): an agent that reads two thermocouples does
not pay the memory of the Modbus stack. A spec is checked against its contract when it is
loaded; one that fails to import or does not meet the contract is recorded as broken with the
reason and cannot be used; it never takes the agent down.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from edge_agent.agent.errors import RegistryError
from edge_agent.drivers.contract import ENTRY_POINT_GROUP as DRIVER_GROUP
from edge_agent.drivers.contract import DriverSpec, check_driver_spec
from edge_agent.plugins.contract import ENTRY_POINT_GROUP as PLUGIN_GROUP
from edge_agent.plugins.contract import PluginSpec, check_plugin_spec

S = TypeVar("S")
log = logging.getLogger("edge_agent.registry")


@dataclass(frozen=True)
class Origin:
    """Where a registered item comes from: distribution name and version."""

    dist: str
    version: str
    target: str

    @property
    def builtin(self) -> bool:
        return self.dist == "edge-agent"


_EP_VALUE = re.compile(r"[\w.]+\s*(:\s*[\w.]+)?\s*(\[.*\])?")


class LazySpecs(Mapping[str, S], Generic[S]):
    """Name -> spec, importing each entry point on first use; broken ones disappear."""

    def __init__(self, kind: str, check: Callable[[object, str], S], broken: dict[tuple[str, str], str]) -> None:
        self.kind = kind
        self._check = check
        self._broken = broken
        self._eps: dict[str, EntryPoint] = {}
        self._loaded: dict[str, S] = {}

    def add_entry_point(self, ep: EntryPoint) -> None:
        self._eps[ep.name] = ep

    def add(self, name: str, spec: S) -> None:
        self._loaded[name] = spec

    def __getitem__(self, name: str) -> S:
        if name in self._loaded:
            return self._loaded[name]
        ep = self._eps.get(name)
        if ep is None or (self.kind, name) in self._broken:
            raise KeyError(name)
        try:
            if not _EP_VALUE.fullmatch(ep.value.strip()):  # importlib would fail with "'NoneType' ... 'group'"
                raise RegistryError(
                    f"entry point {name!r}: {ep.value!r} is not 'package.module:ATTRIBUTE' "
                    "(in entry_points.txt the value has no quotes; check the package's pyproject.toml)"
                )
            spec = self._check(ep.load(), f"{self.kind} {name!r} ({ep.value})")
            if getattr(spec, "name", name) != name:  # configs name the entry point: they must agree
                raise RegistryError(
                    f"entry point {name!r} ({ep.value}) registers a spec named {getattr(spec, 'name', '?')!r}; "
                    "the entry-point name must equal SPEC.name"
                )
        except Exception as exc:  # a broken third-party package must not stop the agent
            self._broken[(self.kind, name)] = f"{type(exc).__name__}: {exc}"
            raise KeyError(name) from None
        self._loaded[name] = spec
        return spec

    def __iter__(self) -> Iterator[str]:
        names = set(self._eps) | set(self._loaded)
        return iter(sorted(n for n in names if (self.kind, n) not in self._broken))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def load_all(self) -> None:
        """Import every entry point (listings); failures are recorded as broken."""
        for name in list(self._eps):
            self.get(name)


@dataclass
class Registry:
    broken: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> reason
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)  # (kind, name) -> origin
    # Third-party entry points named like a built-in: ignored (the built-in is kept), listed.
    shadowed: dict[tuple[str, str], list[Origin]] = field(default_factory=dict)
    plugins: LazySpecs[PluginSpec] = field(init=False)
    drivers: LazySpecs[DriverSpec] = field(init=False)

    def __post_init__(self) -> None:
        self.plugins = LazySpecs("plugin", check_plugin_spec, self.broken)
        self.drivers = LazySpecs("driver", check_driver_spec, self.broken)

    def add_plugin(self, spec: PluginSpec, origin: Origin | None = None) -> None:
        """Register a plugin spec (tests and embedders); checked against the contract."""
        check_plugin_spec(spec, f"plugin {getattr(spec, 'name', '?')!r}")
        self.plugins.add(spec.name, spec)
        self.origins[("plugin", spec.name)] = origin or Origin("(added)", "", "")

    def add_driver(self, spec: DriverSpec, origin: Origin | None = None) -> None:
        """Register a driver spec (tests and embedders); checked against the contract."""
        check_driver_spec(spec, f"driver {getattr(spec, 'name', '?')!r}")
        self.drivers.add(spec.name, spec)
        self.origins[("driver", spec.name)] = origin or Origin("(added)", "", "")

    def load_all(self) -> None:
        """Import everything (for listings and conformance checks)."""
        self.plugins.load_all()
        self.drivers.load_all()

    def add_entry_point(self, kind: str, ep: EntryPoint) -> None:
        """Register an entry point; a third-party one named like a built-in never replaces it."""
        specs = self.drivers if kind == "driver" else self.plugins
        new, old = _origin(ep), self.origins.get((kind, ep.name))
        if old is not None:  # the built-in wins; between two others, the first one listed stays
            builtin_wins = new.builtin and not old.builtin
            hidden, kept = (old, new) if builtin_wins else (new, old)
            self._shadow(kind, ep.name, hidden, kept)
            if not builtin_wins:
                return
        specs.add_entry_point(ep)
        self.origins[(kind, ep.name)] = new

    def _shadow(self, kind: str, name: str, hidden: Origin, kept: Origin) -> None:
        self.shadowed.setdefault((kind, name), []).append(hidden)
        log.warning(
            "%s %r of %s %s (%s) is ignored: %s %s registers the same name; rename it",
            kind,
            name,
            hidden.dist,
            hidden.version,
            hidden.target,
            "the built-in" if kept.builtin else kept.dist,
            kind,
        )


def _origin(ep: EntryPoint) -> Origin:
    dist: Any = ep.dist
    return Origin(dist.name if dist else "?", dist.version if dist else "?", ep.value)


_cached: Registry | None = None


def load_registry(*, refresh: bool = False) -> Registry:
    """List every installed driver and plugin once per process (imported on first use)."""
    global _cached
    if _cached is None or refresh:
        reg = Registry()
        for ep in entry_points(group=DRIVER_GROUP):
            reg.add_entry_point("driver", ep)
        for ep in entry_points(group=PLUGIN_GROUP):
            reg.add_entry_point("plugin", ep)
        _cached = reg
    return _cached
