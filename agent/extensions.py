"""The daemon's internal extension points, as typed Protocols; bootstrap registers the parts.

Kept apart from agent/runtime so that the publisher (agent/messaging) and the parts that plug in
(agent/sparkplug, agent/maintenance) can name them without importing the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from edge_agent.drivers.contract import ValueSpec

if TYPE_CHECKING:
    from edge_agent.agent.config.schema import Instance

Quality = Mapping[str, str] | None


class Output(Protocol):
    """Fed with every data message and event beside (or instead of) the native topics."""

    def data(self, instance: str, values: Mapping[str, Any], quality: Quality, ts_ms: int | None) -> None: ...

    def event(self, instance: str, kind: str, message: str, severity: str, fields: Mapping[str, Any]) -> None: ...


class InstanceListener(Protocol):
    """Told when an instance starts (with its declared values) and when it stops."""

    def instance_started(self, name: str, specs: tuple[ValueSpec, ...]) -> None: ...

    def instance_stopped(self, name: str) -> None: ...


class PublishHook(Protocol):
    """Sees every data message before it is sent (returns the quality to send) and every event."""

    def on_data(self, instance: str, values: Mapping[str, Any], quality: Quality) -> Quality: ...

    def on_event(self, instance: str, kind: str, severity: str, fields: Mapping[str, Any]) -> None: ...


class DriverWrapper(Protocol):
    """Wraps every instance's driver once it is built (calibration and capture: the driver tap)."""

    def wrap_driver(self, instance: str, driver: Any) -> Any: ...


class DriverFactory(Protocol):
    """Builds an instance's driver: in this process, or in a child process (``isolate = "process"``)."""

    def __call__(self, inst: Instance) -> Any: ...


class Service(Protocol):
    """A part with a life of its own: started with the session, closed once the instances stopped."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Extensions:
    """What bootstrap registered, in order; the publisher and the instances read these lists."""

    outputs: list[Output] = field(default_factory=list)
    listeners: list[InstanceListener] = field(default_factory=list)
    hooks: list[PublishHook] = field(default_factory=list)
    wrappers: list[DriverWrapper] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)

    def wrap(self, instance: str, driver: Any) -> Any:
        """The driver with every registered wrapper around it (the first registered innermost)."""
        for wrapper in self.wrappers:
            driver = wrapper.wrap_driver(instance, driver)
        return driver
