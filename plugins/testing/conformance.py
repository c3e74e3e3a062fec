"""The plugin conformance kit: the plugin contract's rules as checks that return problems.

A plugin is run the way the runtime runs it (:class:`~edge_agent.plugins.testing.harness.Harness`, a
manual clock advanced by ``interval_s`` per poll), on a real driver's simulated backend:

* spec and options schema (defaults valid, unknown key refused), a raising factory reported;
* start / ``polls`` polls / close, each within a deadline; what it emits has str keys, scalar
  values (None where a value is not available), qualities from the fixed list, and keys and dtypes
  as the spec declares;
* with a driver whose every read fails with a DriverError: ``poll`` must not raise, and must say
  so (a quality or an event): a plain exception would restart the instance.

From a test: subclass :class:`edge_agent.plugins.testing.PluginConformance`, or call
``check_plugin(SPEC, options, driver=lambda: my_sim_driver)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from edge_agent.drivers.contract import Driver, DriverSpec, ValueSpec
from edge_agent.drivers.dotted_keys import flatten
from edge_agent.drivers.errors import CommError, DriverError
from edge_agent.drivers.lanes import Lane
from edge_agent.drivers.testing.calls import Caller, DeadlineExceeded
from edge_agent.drivers.testing.conformance import check_options, check_values, raised
from edge_agent.drivers.testing.conformance import check_registration as check_entry_point
from edge_agent.drivers.testing.faults import FaultPlan, inject_faults
from edge_agent.plugins.contract import ENTRY_POINT_GROUP, PluginSpec, check_plugin_spec
from edge_agent.plugins.testing.harness import Harness

POLL_DEADLINE_S = 10.0
DriverFactory = Callable[[], Driver]


def driver_declared_values(driver_spec: DriverSpec[Any, Any], driver_options: Mapping[str, Any]) -> list[ValueSpec]:
    """What a driver declares for these options (empty when it declares nothing)."""
    if driver_spec.values is None:
        return []
    return list(driver_spec.values(msgspec.convert(dict(driver_options), driver_spec.options)))


def check_spec(spec: object) -> list[str]:
    """The spec object itself (type, name, options class, factory, capability)."""
    try:
        check_plugin_spec(spec, f"plugin {getattr(spec, 'name', '?')!r}")
    except Exception as exc:
        return [f"spec: {exc}"]
    return []


def check_registration(spec: PluginSpec) -> list[str]:
    """An entry point named ``spec.name`` in ``edge_agent.plugins`` loads exactly this spec."""
    return check_entry_point(spec, ENTRY_POINT_GROUP)


def _declared(spec: PluginSpec, opts: Any, driver_values: Sequence[Any]) -> dict[str, Any] | None:
    values_fn = getattr(spec, "values", None)
    if not callable(values_fn):
        return None
    return {v.key: v for v in values_fn(opts, driver_values)}


def _thread_call(caller: Caller, deadline_s: float) -> Callable[..., Any]:
    """The context's ``call``: the agent's own rules (a lane, a deadline), so a stuck read cannot hang the kit."""
    lane = Lane(f"{caller.name}:plugin")

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return await lane.call(fn, *args, deadline_s=deadline_s)

    return call


async def _run(h: Harness, polls: int, interval_s: float, deadline_s: float, where: str) -> list[str]:
    step = "start"
    try:
        await asyncio.wait_for(h.start(), deadline_s)
        for i in range(1, polls + 1):
            step = f"poll {i}"
            await asyncio.wait_for(h.poll(), deadline_s)
            h.clock.advance(interval_s)
            await asyncio.sleep(0.02)  # waveform drivers: let a few samples arrive
    except (TimeoutError, DeadlineExceeded):
        return [f"{where}{step}: did not return within {deadline_s} s"]
    except DriverError as exc:
        problems = [raised(f"{where}{step}", exc) + " (catch it in poll: a quality flag and an event)"]
    except Exception as exc:
        problems = [raised(f"{where}{step}", exc)]
    else:
        problems = []
    try:
        await asyncio.wait_for(h.close(), deadline_s)
    except Exception as exc:
        problems.append(raised(f"{where}close", exc))
    return problems


def _harness(spec: PluginSpec, options: Mapping[str, Any], driver: Driver | None, call: Any) -> Harness | str:
    try:
        return Harness(spec, options=options, driver=driver, call=call)
    except msgspec.ValidationError as exc:
        return f"options: {exc}"
    except Exception as exc:
        return raised("factory", exc)


def check_run(
    spec: PluginSpec,
    options: Mapping[str, Any],
    driver: DriverFactory | None,
    *,
    polls: int = 3,
    interval_s: float = 1.0,
    deadline_s: float = POLL_DEADLINE_S,
    driver_values: Sequence[Any] = (),
) -> list[str]:
    """Start, poll, close on a healthy driver; check every emitted message."""
    with Caller() as caller:
        h = _harness(spec, options, driver() if driver else None, _thread_call(caller, deadline_s))
        if isinstance(h, str):
            return [h]
        problems = asyncio.run(_run(h, polls, interval_s, deadline_s, ""))
    declared = _declared(spec, h.ctx.options, driver_values)
    for i, e in enumerate(h.emitted, 1):
        problems += check_values(f"emit {i}", flatten(e.values), e.quality, declared, allow_none=True)
    return problems


def check_driver_faults(
    spec: PluginSpec,
    options: Mapping[str, Any],
    driver: DriverFactory,
    *,
    polls: int = 3,
    interval_s: float = 1.0,
    deadline_s: float = POLL_DEADLINE_S,
) -> list[str]:
    """Every read fails with a CommError: poll must not raise, and must report it (quality or event)."""
    plan = FaultPlan(fail_from=1, error=lambda: CommError("conformance: injected read failure"))
    with Caller() as caller:
        h = _harness(spec, options, inject_faults(driver(), read=plan), _thread_call(caller, deadline_s))
        if isinstance(h, str):
            return [h]
        problems = asyncio.run(_run(h, polls, interval_s, deadline_s, "with failing reads: "))
    if plan.calls and not problems and not h.events and not any(e.quality for e in h.emitted):
        problems.append("with failing reads: no quality and no event (a DriverError must become one)")
    return problems


def check_plugin(
    spec: PluginSpec,
    options: Mapping[str, Any],
    *,
    driver: DriverFactory | None = None,
    polls: int = 3,
    interval_s: float = 1.0,
    deadline_s: float = POLL_DEADLINE_S,
    driver_values: Sequence[Any] = (),
) -> list[str]:
    """Every check but registration. ``driver`` builds the (simulated) driver the plugin needs,
    ``driver_values`` are what that driver declares (``driver_declared_values``)."""
    problems = check_spec(spec)
    if problems:
        return problems
    problems = check_options(spec.options, options)
    if spec.requires is not None and driver is None:
        return [*problems, f"run: the plugin requires a {spec.requires} driver: pass driver="]
    kw: dict[str, Any] = {"polls": polls, "interval_s": interval_s, "deadline_s": deadline_s}
    problems += check_run(spec, options, driver, driver_values=driver_values, **kw)
    if driver is not None:
        problems += check_driver_faults(spec, options, driver, polls=polls, interval_s=interval_s)
    return problems
