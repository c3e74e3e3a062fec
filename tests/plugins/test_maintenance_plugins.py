"""Production figures surviving a restart, energy per part, maintenance plans (known answers)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from edge_agent.plugins.contract import AgentInfo, MemoryStore
from edge_agent.plugins.maintenance.plugin import SPEC as MAINT
from edge_agent.plugins.production.plugin import SPEC as PROD
from edge_agent.plugins.testing.harness import Harness, ManualClock, StaticLink

# 2023-11-14 22:13:20 UTC; shifts of one hour from 22:00
EPOCH_MS = 1_700_000_000_000
PROD_OPTS: dict[str, Any] = {
    "total_count": {"instance": "plc", "key": "count"},
    "ideal_cycle_time_s": 1.0,
    "energy_kwh": {"instance": "meter", "key": "kwh"},
    "shifts": [{"name": "late", "start": "22:00", "end": "23:00"}, {"name": "night", "start": "23:00", "end": "00:00"}],
}


def _prod(store: MemoryStore, link: StaticLink, clock: ManualClock) -> Harness:
    return Harness(PROD, options=PROD_OPTS, link=link, clock=clock, instance="line1", agent=AgentInfo(store=store))


def test_shift_figures_and_energy_survive_a_restart_within_the_shift() -> None:
    async def run() -> None:
        store, link, clock = MemoryStore(), StaticLink(), ManualClock(epoch_ms=EPOCH_MS)
        h = _prod(store, link, clock)
        await h.start()
        for i in range(11):  # 10 intervals of 10 s: 1 part and 0.01 kWh each
            link.values[("plc", "count")] = 100 + i
            link.values[("meter", "kwh")] = 500.0 + 0.01 * i
            await h.poll()
            clock.advance(10)
        shift = h.emitted[-1].values["shift"]
        assert shift["count_total"] == 10 and shift["energy_kwh"] == pytest.approx(0.1)
        assert shift["kwh_per_good_part"] == pytest.approx(0.01)
        await h.close()
        # restart: the same store; the counter went on by 2 parts while the agent was down
        h2 = _prod(store, link, clock)
        await h2.start()
        link.values[("plc", "count")] = 112
        link.values[("meter", "kwh")] = 500.12
        await h2.poll()
        s2 = h2.emitted[-1].values["shift"]
        assert s2["count_total"] == 12 and s2["energy_kwh"] == pytest.approx(0.12)
        await h2.close()

    asyncio.run(run())


def test_a_shift_that_ended_while_the_agent_was_down_is_reported_at_start() -> None:
    async def run() -> None:
        store, link, clock = MemoryStore(), StaticLink(), ManualClock(epoch_ms=EPOCH_MS)
        h = _prod(store, link, clock)
        await h.start()
        for i in range(3):
            link.values[("plc", "count")] = i
            await h.poll()
            clock.advance(10)
        await h.close()
        clock.advance(3600)  # down across the shift change (late -> night)
        h2 = _prod(store, link, clock)
        await h2.start()
        await h2.poll()
        ends = [e for e in h2.events if e.kind == "shift_end"]
        assert len(ends) == 1 and ends[0].fields["name"] == "late" and ends[0].fields["count_total"] == 2
        assert h2.emitted[-1].values["shift"]["name"] == "night"

    asyncio.run(run())


MAINT_OPTS = {
    "assets": [
        {
            "name": "pump",
            "equipment": "4711",
            "run": {"instance": "tacho", "key": "rpm", "above": 100},
            "parts": {"instance": "plc", "key": "count"},
            "plans": [
                {"id": "grease", "task": "Grease", "every_hours": 1.0, "every_parts": 1000},
                {"id": "inspect", "task": "Inspect", "every_cycles": 2, "grace_percent": 50},
            ],
        }
    ]
}


def test_plans_fall_due_on_whichever_basis_first_and_done_resets() -> None:
    async def run() -> None:
        store, link, clock = MemoryStore(), StaticLink(), ManualClock(epoch_ms=EPOCH_MS)
        h = Harness(MAINT, options=MAINT_OPTS, link=link, clock=clock, instance="m", agent=AgentInfo(store=store))
        await h.start()
        link.values[("plc", "count")] = 0
        link.values[("tacho", "rpm")] = 0
        await h.poll()
        for _ in range(2):  # two starts (0 -> 1500 rpm), 30 min running each: 1 h, 2 cycles
            clock.advance(10)
            link.values[("tacho", "rpm")] = 1500
            await h.poll()
            clock.advance(1800)
            await h.poll()
            link.values[("tacho", "rpm")] = 0
            clock.advance(10)
            await h.poll()
        v = h.emitted[-1].values["pump"]
        assert (
            v["running_h"] == pytest.approx(1.0 + 20 / 3600, abs=1e-4) and v["cycles"] == 2
        )  # an interval counts in the state read at its end
        kinds = [(e.kind, e.fields["work_request"]["plan"], e.fields["work_request"]["basis"]) for e in h.events]
        assert ("maintenance_due", "grease", "running_hours") in kinds
        assert ("maintenance_due", "inspect", "cycles") in kinds
        wr = h.events[0].fields["work_request"]
        assert wr["asset"] == "pump" and wr["equipment"] == "4711" and wr["due_since"].startswith("2023-11-14")
        done = await h.plugin.command("maintenance_done", {"asset": "pump", "plan": "grease", "by": "bob"})
        assert done["was"] == "due" and store.records("maintenance_done")[0]["by"] == "bob"
        await h.poll()
        assert h.emitted[-1].values["pump"]["plans"]["grease"]["status"] == "ok"
        with pytest.raises(ValueError, match="unknown 'nope'"):
            await h.plugin.command("maintenance_done", {"asset": "nope", "plan": "grease", "by": "bob"})
        await h.close()
        # counters survive a restart
        h2 = Harness(MAINT, options=MAINT_OPTS, link=link, clock=clock, instance="m", agent=AgentInfo(store=store))
        await h2.start()
        await h2.poll()
        assert h2.emitted[-1].values["pump"]["cycles"] == 2
        assert h2.emitted[-1].values["pump"]["plans"]["grease"]["status"] == "ok"
        assert h2.emitted[-1].values["pump"]["plans"]["inspect"]["status"] == "due"

    asyncio.run(run())


def test_wall_clock_basis_days() -> None:
    async def run() -> None:
        opts = {"assets": [{"name": "a", "plans": [{"id": "p", "task": "Look", "every_days": 2}]}]}
        clock = ManualClock(epoch_ms=EPOCH_MS)
        h = Harness(MAINT, options=opts, clock=clock, instance="m", agent=AgentInfo(store=MemoryStore()))
        await h.start()
        await h.poll()
        clock.advance(dt.timedelta(days=2, hours=1).total_seconds())
        await h.poll()
        assert [e.kind for e in h.events] == ["maintenance_due"]
        clock.advance(dt.timedelta(days=1).total_seconds())
        await h.poll()
        assert [e.kind for e in h.events] == ["maintenance_due", "maintenance_overdue"]

    asyncio.run(run())
