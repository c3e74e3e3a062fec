"""The one apply path for every source of an instance set: start-up, SIGHUP, push, desired state.

prepare (build every new or changed instance and open its driver, stopping nothing) -> swap
(stop what is removed or changed, start the prepared ones; untouched instances keep running) ->
prove (each new or changed instance emits a good-quality value within its check window) ->
either keep, or roll back (the previous instances come back). A local file change is applied as
written (``prove=False``): a faulted instance then retries and reports; a push must prove itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge_agent.agent.config.schema import Config, Instance
from edge_agent.agent.runtime.supervisor import InstanceRunner
from edge_agent.plugins.contract import Plugin

Opened = tuple[Any, Plugin]


class InstanceHost(Protocol):
    """What the apply path needs from the runtime that owns the running instances."""

    runners: dict[str, tuple[InstanceRunner, asyncio.Task[None]]]

    def make_runner(self, inst: Instance) -> InstanceRunner: ...

    def start_instance(
        self, inst: Instance, runner: InstanceRunner | None = None, opened: Opened | None = None
    ) -> InstanceRunner: ...

    async def stop_instances(self, names: list[str], *, timeout_s: float = 2.0) -> None: ...


@dataclass
class Outcome:
    """What an apply did: ``accepted`` with the diff, or ``rolled_back`` with the reason."""

    status: str
    summary: dict[str, list[str]] = field(default_factory=dict)
    reason: str = ""


def diff_instances(old: Mapping[str, Instance], new: Mapping[str, Instance]) -> dict[str, list[str]]:
    """Which instances a new config adds, changes, removes or leaves unchanged."""
    return {
        "added": [n for n in new if n not in old],
        "changed": [n for n in new if n in old and new[n].fingerprint != old[n].fingerprint],
        "removed": [n for n in old if n not in new],
        "unchanged": [n for n in new if n in old and new[n].fingerprint == old[n].fingerprint],
    }


def check_window_s(inst: Instance, default_s: float, override_s: float | None) -> float:
    """How long an instance may take to prove a good read: the push's window, else the longer of
    ``remote.verify_timeout_s`` and two poll intervals (a 60-s poll cannot prove itself in 10 s)."""
    return override_s if override_s is not None else max(default_s, 2 * inst.interval_s + 1)


async def apply(
    host: InstanceHost,
    old: Config,
    new: Config,
    *,
    prove: bool,
    check_s: float | None = None,
    force: frozenset[str] = frozenset(),
) -> Outcome:
    """Move the running instances from ``old`` to ``new``; roll back if a proof fails."""
    before = {i.name: i for i in old.instances}
    fresh = {i.name: i for i in new.instances}
    summary = diff_instances(before, fresh)
    if force:  # re-apply: these instances restart and prove themselves again even if unchanged
        summary["changed"] += [n for n in summary["unchanged"] if n in force]
        summary["unchanged"] = [n for n in summary["unchanged"] if n not in force]
    starting = [fresh[n] for n in summary["added"] + summary["changed"]]
    opened = (
        await _prepare(host, starting, new.remote.verify_timeout_s)
        if prove
        else [(host.make_runner(i), None) for i in starting]
    )
    if isinstance(opened, str):
        return Outcome("rolled_back", summary, opened)
    await host.stop_instances(summary["removed"] + summary["changed"])
    for runner, got in opened:
        host.start_instance(runner.inst, runner, got)
    if prove:
        failure = await _prove([r for r, _ in opened], new.remote.verify_timeout_s, check_s)
        if failure:
            await host.stop_instances(summary["added"] + summary["changed"])
            for name in summary["changed"] + summary["removed"]:
                host.start_instance(before[name])
            return Outcome("rolled_back", summary, failure)
    return Outcome("accepted", summary)


async def _prepare(
    host: InstanceHost, insts: list[Instance], timeout_s: float
) -> list[tuple[InstanceRunner, Opened | None]] | str:
    done: list[tuple[InstanceRunner, Opened | None]] = []
    for inst in insts:
        runner = host.make_runner(inst)
        try:
            async with asyncio.timeout(timeout_s):
                got = await runner.open()
        except Exception as exc:
            for r, o in done:
                if o is not None:
                    await r.close(*o)
            return f"instance {inst.name!r}: could not start: {type(exc).__name__}: {exc}"
        done.append((runner, got))
    return done


async def _prove(runners: list[InstanceRunner], default_s: float, override_s: float | None) -> str:
    """Wait for every runner's first good value at once; the first failure, by name, else ""."""

    async def one(runner: InstanceRunner) -> str:
        window = check_window_s(runner.inst, default_s, override_s)
        try:
            async with asyncio.timeout(window):
                await runner.first_good.wait()
        except TimeoutError:
            why = runner.stats.last_error or runner.last_bad_quality or "no value at all"
            return f"instance {runner.inst.name!r}: no good-quality value within {window:g} s ({why})"
        return ""

    results = await asyncio.gather(*(one(r) for r in runners))
    return "; ".join(r for r in results if r)
