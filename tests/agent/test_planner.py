"""The planner's questions: what is due and overdue now (retained on change), every plan, the sign-offs."""

from __future__ import annotations

from typing import Any

import pytest
from edge_agent.agent.maintenance.planner import Planner
from edge_agent.agent.ops.answers import table
from edge_agent.plugins.contract import MemoryStore


def _plans(die: str, grease: str) -> dict[str, Any]:
    return {
        "press1": {
            "running": True,
            "plans": {"die-check": {"task": "Inspect the die", "status": die, "used_pct": 104.0, "parts_left": -4}},
        },
        "pump1": {
            "running": True,
            "plans": {"regrease": {"task": "Regrease", "status": grease, "used_pct": 20.0, "days_left": 144.0}},
        },
    }


def test_due_list_is_published_on_change_with_the_work_requests_equipment() -> None:
    store, published = MemoryStore(), []
    planner = Planner(store, lambda i: i == "maint", published.append)
    planner.on_data("line1", {"state": "running"})  # not a maintenance instance: ignored
    planner.on_data("maint", _plans("ok", "ok"))
    assert published[-1]["due"] == [] and len(published) == 1
    wr = {"asset": "press1", "plan": "die-check", "equipment": "10004720", "functional_location": "PL01-L1-PRESS1",
          "due_since": "2026-03-02T06:10:00+00:00", "priority": "normal"}  # fmt: skip
    planner.on_event("maint", "maintenance_due", {"work_request": wr})
    planner.on_data("maint", _plans("due", "ok"))
    planner.on_data("maint", _plans("due", "ok"))  # no change: nothing published
    assert len(published) == 2
    due = published[-1]["due"]
    assert [(d["asset"], d["plan"], d["status"], d["equipment"]) for d in due] == [
        ("press1", "die-check", "due", "10004720")
    ]
    planner.on_data("maint", _plans("due", "overdue"))
    assert [d["status"] for d in planner.command({})["due"]] == ["overdue", "due"]  # overdue first
    # a restart keeps the work requests (their equipment comes only with the due event)
    again = Planner(store, lambda i: i == "maint", published.append)
    again.on_data("maint", _plans("due", "ok"))
    assert again.due()[0]["functional_location"] == "PL01-L1-PRESS1"
    assert len(again.command({"view": "plans"})["plans"]) == 2


def test_history_lists_the_sign_offs_newest_first_and_bad_views_are_refused() -> None:
    store = MemoryStore()
    for n, who in enumerate(("ann", "bob")):
        done = f"2026-03-0{n + 1}T10:00:00+00:00"
        rec = {
            "asset": "pump1",
            "plan": "regrease",
            "by": who,
            "was": "due",
            "done": done,
            "work_order": "",
            "notes": "",
        }
        store.record("maintenance_done", "maint", rec)
    planner = Planner(store, lambda i: i == "maint", lambda d: None)
    history = planner.command({"view": "history", "limit": "10"})["history"]
    assert [h["by"] for h in history] == ["bob", "ann"]
    lines = table(history, ["done", "asset", "plan", "by", "was"])
    assert lines[0].split() == ["done", "asset", "plan", "by", "was"] and "bob" in lines[1]
    with pytest.raises(ValueError, match="view: one of due, plans, history"):
        planner.command({"view": "everything"})
    with pytest.raises(ValueError, match="limit"):
        planner.command({"view": "history", "limit": "lots"})
