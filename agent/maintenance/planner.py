"""What a maintenance planner asks an agent: what is due and overdue now, and what was done.

The ``maintenance`` plugin judges plans and raises ``maintenance_due``/``maintenance_overdue`` with
a CMMS work request; this keeps, across every maintenance instance of the agent, the list of
plans due or overdue now (with the work request's equipment and functional location), publishes
it retained on ``{p}/{agent}/maintenance/due`` whenever it changes (a planner's tool reads it
without asking), and answers the ``maintenance`` command: ``view`` = ``due`` (default), ``plans``
(every plan with its state) or ``history`` (the sign-offs, newest first). docs/maintenance.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edge_agent.agent import clock
from edge_agent.plugins.contract import StateStore

NS = "planner"
DONE = "maintenance_done"  # the plugin's record kind for a sign-off
ORDER = {"overdue": 0, "due": 1}
VIEWS = ("due", "plans", "history")
MAX_HISTORY = 200


class Planner:
    """The due list of the agent's maintenance instances; ``is_maintenance(instance)`` says which they are."""

    def __init__(
        self, store: StateStore, is_maintenance: Callable[[str], bool], publish: Callable[[dict[str, Any]], None]
    ) -> None:
        self.store, self.is_maintenance, self.publish = store, is_maintenance, publish
        self.plans: dict[str, dict[str, Any]] = {}  # instance -> {asset: {plans: {...}}} as last published
        saved = store.load(NS, "work_requests")
        self.requests: dict[str, dict[str, Any]] = dict(saved) if isinstance(saved, Mapping) else {}
        self.published: list[dict[str, Any]] | None = None

    def on_data(self, instance: str, values: Mapping[str, Any]) -> None:
        if not self.is_maintenance(instance):
            return
        self.plans[instance] = {k: v for k, v in values.items() if isinstance(v, Mapping)}
        due = self.due()
        if due != self.published:
            self.published = due
            self.publish({"ts_ms": clock.now_ms(), "due": due})

    def on_event(self, instance: str, kind: str, fields: Mapping[str, Any]) -> None:
        """Keep the work request of a plan falling due (its equipment, location, since when)."""
        if kind in ("maintenance_due", "maintenance_overdue"):
            wr = fields.get("work_request")
            if isinstance(wr, Mapping):
                self.requests[f"{instance}/{wr.get('asset')}/{wr.get('plan')}"] = dict(wr)
                self.store.save(NS, "work_requests", self.requests)
        elif kind == DONE:
            key = f"{instance}/{fields.get('asset')}/{fields.get('plan')}"
            if self.requests.pop(key, None) is not None:
                self.store.save(NS, "work_requests", self.requests)

    def rows(self) -> list[dict[str, Any]]:
        """Every plan of every asset: instance, asset, plan, task, status, how far, what is left."""
        out = []
        for inst, assets in sorted(self.plans.items()):
            for asset, d in sorted(assets.items()):
                for pid, plan in dict(d.get("plans") or {}).items():
                    if isinstance(plan, Mapping):
                        row = {"instance": inst, "asset": asset, "plan": pid, "task": plan.get("task", pid)}
                        left = {k: v for k, v in plan.items() if k.endswith("_left")}
                        out.append({**row, "status": plan.get("status"), "used_pct": plan.get("used_pct"), **left})
        return out

    def due(self) -> list[dict[str, Any]]:
        """Plans due or overdue now, overdue first, with their work request's equipment and location."""
        out = []
        for row in self.rows():
            if row["status"] not in ORDER:
                continue
            wr = self.requests.get(f"{row['instance']}/{row['asset']}/{row['plan']}", {})
            out.append({**{k: row[k] for k in ("instance", "asset", "plan", "task", "status", "used_pct")},
                        "equipment": wr.get("equipment", ""), "functional_location": wr.get("functional_location", ""),
                        "due_since": wr.get("due_since"), "priority": wr.get("priority")})  # fmt: skip
        return sorted(out, key=lambda r: (ORDER[str(r["status"])], str(r.get("due_since") or "")))

    def history(self, limit: int) -> list[dict[str, Any]]:
        """Sign-offs (``maintenance_done``) of every maintenance instance, newest first."""
        keep = ("done", "asset", "plan", "by", "was", "work_order", "notes")
        return [{k: r.get(k) for k in keep} for r in self.store.records(DONE, None, limit=limit)]

    def command(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``maintenance`` {view: due | plans | history, limit}."""
        view = str(args.get("view") or "due")
        if view not in VIEWS:
            raise ValueError(f"view: one of {', '.join(VIEWS)}; got {view!r}")
        if view == "history":
            limit = args.get("limit", 50)
            try:
                n = max(1, min(int(limit), MAX_HISTORY))
            except (TypeError, ValueError):
                raise ValueError(f"limit: a whole number 1..{MAX_HISTORY}, got {limit!r}") from None
            return {"history": self.history(n)}
        if view == "plans":
            return {"plans": self.rows()}
        return {"due": self.due()}
