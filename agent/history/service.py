"""Feeds the history store from what the publisher sends, and answers ``cmd/history``.

An output of the publisher (beside Sparkplug): every data message's numeric values (declared
numeric, where the instance declares its values) go into the open minute of their instance, in
memory; every ``commit_interval_s`` (10 min) the closed minutes are written in one transaction
in a worker thread, complete hours are rolled up from their minutes, and old rows expire.

Buckets follow the wall clock (``ts`` of each message), which can step (issue 29: a Pi without
RTC, NTP's first sync). A ``clock_step`` event closes every open minute (no bucket mixes samples
of two clocks) and is kept in the store's ``clock_steps`` table, which every answer of
``cmd/history`` lists in its range: a reader sees the gap a forward step leaves. A minute once
closed is never written again, so after a step back (of up to a day) the samples stamped before
the newest closed minute are dropped (counted) until the clock has caught up: rows stay in order,
nothing is counted twice, nothing already written is overwritten. A clock found more than a day
ahead (set wrong, then corrected) does not stop history for that long: rows resume at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from edge_agent.agent.config.declared_values import find, flatten
from edge_agent.agent.history.settings import HistorySection
from edge_agent.agent.history.store import (
    BUCKET_S,
    HOUR,
    MINUTE,
    Agg,
    HistoryStore,
    KeyOrder,
    PackedAggs,
    Point,
    point,
)
from edge_agent.drivers.contract import DType, ValueSpec

log = logging.getLogger("agent.history")

_NOT_TRENDED = frozenset({DType.BOOL, DType.STR})  # flags and text; everything else with a number is
MAX_POINTS = 50_000  # one answer: 30 days of minutes fit
HOLD_MAX_S = 86_400  # after a step back of at most this, samples before the newest closed minute are dropped
_SINCE_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> float:
    """``"7d"``, ``"12h"``, ``"90m"``, ``"30s"`` or plain seconds -> seconds."""
    t = text.strip().lower()
    try:
        if t and t[-1] in _SINCE_UNITS_S:
            return float(t[:-1]) * _SINCE_UNITS_S[t[-1]]
        return float(t)
    except ValueError:
        raise ValueError(f"since: {text!r} is not a duration (e.g. 30m, 12h, 7d)") from None


def auto_resolution(span_s: float) -> str:
    """Minutes up to two days (2,880 points), hours beyond: what a trend chart can show."""
    return MINUTE if span_s <= 2 * 86400 else HOUR


class History:
    """One per runtime; ``publisher.outputs`` feeds it, ``cmd/history`` reads it."""

    def __init__(
        self,
        state_dir: Path,
        settings: HistorySection,
        declared: Callable[[str], Iterable[ValueSpec] | None],
        clock: Callable[[], float] = time.time,
        clock_trusted: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings
        # rows expire by age only by a synchronised clock: a clock set years ahead by mistake
        # would otherwise delete every row at the next commit (the size bound holds regardless)
        self.clock_trusted = clock_trusted
        self.declared = declared
        self.clock = clock
        self.store = HistoryStore(state_dir / "history.sqlite")
        self._open: dict[tuple[str, int], dict[str, Agg]] = {}  # (instance, minute start) -> key -> Agg
        # closed, not yet written: packed (a 10-min commit waits for ~7,000 keys at the reference plant)
        self._pending: list[tuple[str, int, PackedAggs]] = []
        self._orders: dict[str, KeyOrder] = {}  # instance -> key order of its last closed minute (shared)
        # minutes before this are closed: never opened again (a step back; a restart with the clock behind)
        self._closed_before_s = self.store.newest_minute_s() + 60
        self._steps: list[tuple[int, int, float]] = []  # clock steps (from_ms, to_ms, step_s) not yet written
        self.dropped = 0  # samples of minutes already closed (after a step back; a late ts)
        self._trend: dict[str, dict[str, bool]] = {}  # instance -> key -> trended?
        self._units: dict[str, dict[str, str]] = {}
        self._specs: dict[str, tuple[ValueSpec, ...]] = {}
        self._task: asyncio.Task[None] | None = None
        self.samples = 0
        self.rows_written = 0
        self.fault = ""

    # -- the publisher's output interface -----------------------------------------------------------
    def data(
        self, instance: str, values: Mapping[str, Any], quality: Mapping[str, str] | None, ts_ms: int | None
    ) -> None:
        """Fold one data message into its instance's open minute."""
        t_s = (ts_ms / 1000.0) if ts_ms else self.clock()
        minute = int(t_s // 60 * 60)
        bucket = self._open.get((instance, minute))
        if bucket is None:
            # written or about to be: never a second row for it (unless the clock was more than
            # HOLD_MAX_S ahead: then its rows are wrong, and history must not stop for that long)
            if minute < self._closed_before_s <= minute + HOLD_MAX_S:
                self.dropped += 1
                return
            bucket = self._open[(instance, minute)] = {}
        q = quality or {}
        known = self._known(instance)
        n = 0
        for key, v in flatten(values).items():  # ~10 operations a key: every data message passes here
            ok = known.get(key)
            if ok is None:
                ok = known[key] = self._decide(instance, key, v)
            if not ok:
                continue
            num = float(v) if type(v) is float or type(v) is int else None
            if num is not None and not math.isfinite(num):
                num = None
            agg = bucket.get(key)
            if agg is None:
                agg = bucket[key] = Agg()
            agg.add(num, num is not None and key not in q)
            n += 1
        self.samples += n

    def event(self, instance: str, kind: str, message: str, severity: str, fields: Mapping[str, Any]) -> None:
        """Events are not history (the alarm list and the audit trail keep theirs), except a clock step."""
        if kind == "clock_step":
            self.clock_stepped(int(fields["from_ms"]), int(fields["to_ms"]), float(fields["step_s"]))

    def clock_stepped(self, from_ms: int, to_ms: int, step_s: float) -> None:
        """Close the open minutes stamped by the clock before the step and keep the step for readers.

        After a step forward the minutes of the new clock (those stamped in the second before the
        watch saw the step) stay open; after a step back every open minute is the old clock's."""
        self.close_minutes(math.inf if step_s < 0 else from_ms / 1000 + 60)
        self._steps.append((from_ms, to_ms, step_s))

    def instance_started(self, name: str, specs: tuple[ValueSpec, ...]) -> None:
        """Nothing to do: the declared values are looked up when the first value arrives."""

    def instance_stopped(self, name: str) -> None:
        """A stopped instance is forgotten: a pushed one of the same name may declare other values."""
        self.forget(name)

    def forget(self, instance: str) -> None:
        """The instance's declaration changed (a push): decide again which of its keys are trended."""
        self._trend.pop(instance, None)
        self._units.pop(instance, None)
        self._orders.pop(instance, None)

    def _known(self, instance: str) -> dict[str, bool]:
        """key -> trended? of an instance (its declaration read once per instance and config)."""
        known = self._trend.get(instance)
        if known is None:
            known = self._trend[instance] = {}
            self._specs[instance] = tuple(self.declared(instance) or ())
        return known

    def _decide(self, instance: str, key: str, value: Any) -> bool:
        """Numeric (declared numeric where the instance declares its values), not a flag."""
        specs = self._specs[instance]
        spec = find(specs, key) if specs else None
        if spec is not None:
            self._units.setdefault(instance, {})[key] = spec.unit or ""
            return spec.dtype not in _NOT_TRENDED and spec.length is None
        if specs:
            return False  # an instance that declares its values: only those
        return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))

    # -- closing minutes and writing ----------------------------------------------------------------
    def close_minutes(self, now_s: float) -> None:
        """Move every minute that has ended into the pending list."""
        current = math.inf if math.isinf(now_s) else now_s // 60 * 60
        for ident in [k for k in self._open if k[1] < current]:
            packed = PackedAggs.of(self._open.pop(ident), self._orders.get(ident[0]))
            self._orders[ident[0]] = packed.order
            self._pending.append((ident[0], ident[1], packed))
            self._closed_before_s = max(self._closed_before_s, ident[1] + 60)

    def flush(self) -> None:
        """Write the pending minutes (one transaction), roll up complete hours, expire (worker thread)."""
        rows, self._pending = self._pending, []
        steps, self._steps = self._steps, []
        now, s = int(self.clock()), self.settings
        self.rows_written += self.store.commit(
            rows,
            self._units,
            roll_before_s=now // 3600 * 3600,
            expire_at=(now, s.minute_days, s.hour_days) if self.clock_trusted() else None,
            clock_steps=steps,
        )
        self.store.shrink(int(s.max_mb * 1024 * 1024))

    # -- queries ------------------------------------------------------------------------------------
    def query(self, instance: str, key: str, since_s: float, until_s: float, resolution: str) -> list[Point]:
        """Stored points plus the minutes still in memory (the open one too), in time order."""
        stored = self.store.query(instance, key, int(since_s), math.ceil(until_s), resolution)
        if resolution != MINUTE:
            return stored
        last = stored[-1].t_s if stored else -1
        fresh = [(t, a[key]) for i, t, a in self._memory_rows() if i == instance and key in a and t > last]
        return stored + [point(t, a) for t, a in sorted(fresh) if since_s <= t < until_s]

    def _memory_rows(self) -> list[tuple[str, int, Mapping[str, Agg]]]:
        return [*self._pending, *((i, t, a) for (i, t), a in self._open.items())]

    COMMANDS = ("history",)

    async def command(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """``cmd/history`` {instance, keys, since_s | from_ms, until_ms, resolution} (docs/history.md)."""
        instance = args.get("instance")
        if not isinstance(instance, str):
            known = ", ".join(sorted(self.catalog())) or "none yet"
            raise ValueError(f'history needs an instance: {{"instance": NAME}} (with history: {known})')
        if args.get("list") is True:  # what is kept for the instance, with units (the panel's labels)
            return {"instance": instance, "keys": self.catalog().get(instance, {})}
        keys = args.get("keys") or list(self.catalog().get(instance, {}))[:1]
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError('keys: expected a list of value keys, e.g. ["motor_de.temp_c"]')
        now = self.clock()
        until_s = _seconds(args.get("until_ms"), now * 1000) / 1000
        since_s = _since(args, now) if "from_ms" not in args else _seconds(args["from_ms"], 0) / 1000
        resolution = str(args.get("resolution", "auto"))
        if resolution == "auto":
            resolution = auto_resolution(until_s - since_s)
        if resolution not in BUCKET_S:
            raise ValueError(f"resolution: {resolution!r} (expected minute, hour or auto)")
        loop = asyncio.get_running_loop()
        series = {}
        for key in keys:
            pts = await loop.run_in_executor(None, self.query, instance, key, since_s, until_s, resolution)
            series[key] = {"unit": self._unit(instance, key), "points": [p.row() for p in pts[-MAX_POINTS:]]}
        steps = await loop.run_in_executor(None, self.clock_steps, since_s, until_s)
        return {
            "instance": instance,
            "resolution": resolution,
            "from_ms": int(since_s * 1000),
            "until_ms": int(until_s * 1000),
            "columns": ["t_s", "min", "mean", "max", "last", "n", "good_share"],
            "series": series,
            "clock_steps": steps,
        }

    def clock_steps(self, since_s: float, until_s: float) -> list[dict[str, Any]]:
        """Steps of the wall clock whose before or after falls in the range (stored and not yet written)."""
        lo, hi = int(since_s * 1000), int(until_s * 1000)
        every = self.store.clock_steps() + list(self._steps)
        return [
            {"from_ms": f, "to_ms": t, "step_s": s}
            for f, t, s in sorted(every, key=lambda x: x[1])
            if lo <= f <= hi or lo <= t <= hi
        ]

    def _unit(self, instance: str, key: str) -> str:
        return self._units.get(instance, {}).get(key) or self.store.unit(instance, key)

    def catalog(self) -> dict[str, dict[str, str]]:
        """{instance: {key: unit}}: what has history (stored or in memory)."""
        out = self.store.keys()
        for inst, _t, aggs in self._memory_rows():
            for key in aggs:
                out.setdefault(inst, {}).setdefault(key, self._unit(inst, key))
        return out

    # -- life cycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the periodic batch write (a Service of agent/extensions.py)."""
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="history")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.commit_interval_s)
            self.close_minutes(self.clock())
            try:
                await loop.run_in_executor(None, self.flush)
                self.fault = ""
            except Exception as exc:  # a full disk or a broken file must never take the agent down
                if not self.fault:
                    log.exception("history: write failed")
                self.fault = f"{type(exc).__name__}: {exc}"

    async def close(self) -> None:
        """At a clean stop: write every minute, the open ones too (a partial minute is still true)."""
        if self._task is not None:
            self._task.cancel()
        self.close_minutes(math.inf)
        try:
            self.flush()
        except Exception as exc:
            log.error("history: final write failed: %s", exc)
        self.store.close()

    def stats(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "rows_written": self.rows_written,
            "commits": self.store.commits,
            "dropped": self.dropped,
        }


def _seconds(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a time in ms since the epoch, got {value!r}")
    return float(value)


def _since(args: Mapping[str, Any], now_s: float) -> float:
    since = args.get("since", "1h")
    seconds = parse_since(since) if isinstance(since, str) else _seconds(since, 3600)
    if seconds <= 0:
        raise ValueError(f"since: {since!r} must be a positive duration")
    return now_s - seconds
