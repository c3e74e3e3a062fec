"""The ``thermal`` plugin: regions of interest on a thermal array, their temperature rise and its class.

Per frame and region (at the region's emissivity): max, mean, min, hot-spot position, the rise
over a reference region (a similar component) or over ambient, its class by the NETA MTS table
(confirmed over ``severity_confirm`` frames, one ``thermal_severity`` event per change), a trend of
the maximum, and limit alarms as every plugin has them. The frame on request (``frame`` command:
raw float32 and a false-colour PNG), and the frame of the last raised alarm or class.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from edge_agent.drivers.contract import Quality, ThermalFrame
from edge_agent.drivers.dotted_keys import numeric_leaves
from edge_agent.drivers.errors import DriverError
from edge_agent.plugins.common import trend
from edge_agent.plugins.common.alarms import AlarmSet
from edge_agent.plugins.common.state_store import state_store
from edge_agent.plugins.contract import Plugin, PluginContext, Severity, UnknownCommand
from edge_agent.plugins.thermal.analysis import classify, region_stats
from edge_agent.plugins.thermal.options import (
    AMBIENT,
    NETA_AMBIENT,
    NETA_SIMILAR,
    Region,
    SeverityClass,
    ThermalOptions,
)
from edge_agent.plugins.thermal.render import Overlay, render_png

_PRIORITY_SEVERITY = {1: Severity.ALARM, 2: Severity.ALARM, 3: Severity.WARNING}


def _truthy(v: Any) -> bool:
    """A flag from a command's args: true, or "true"/"1"/"yes" as ``edge-agent cmd --arg`` sends it."""
    return v is True or str(v).strip().lower() in ("1", "true", "yes")


class _Confirmed:
    """A class that changes only after ``n`` consecutive frames agree on the new one."""

    __slots__ = ("candidate", "count", "current", "n")

    def __init__(self, n: int) -> None:
        self.n, self.count = n, 0
        self.current: SeverityClass | None = None
        self.candidate: SeverityClass | None = None

    def update(self, cls: SeverityClass | None) -> bool:
        """Feed one frame's class; True when the confirmed class changed."""
        if cls == self.current:
            self.candidate, self.count = None, 0
            return False
        self.count = self.count + 1 if cls == self.candidate else 1
        self.candidate = cls
        if self.count < self.n:
            return False
        self.current, self.candidate, self.count = cls, None, 0
        return True


class ThermalPlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.o: ThermalOptions = ctx.options
        self.regions: list[Region] = self.o.all_regions()
        self.alarms = AlarmSet(self.o.alarms, state_store(ctx), ctx.instance)
        self.classes = {r.name: _Confirmed(self.o.severity_confirm) for r in self.regions}
        self.history: dict[str, deque[tuple[float, float]]] = {r.name: deque() for r in self.regions}
        self.last: ThermalFrame | None = None
        self.last_message: dict[str, Any] = {}
        self.alarm_frame: dict[str, Any] | None = None
        self.faulted = False

    def _classes(self, r: Region) -> list[SeverityClass]:
        if r.classes is not None:
            return list(r.classes)
        return list(NETA_AMBIENT if r.reference == AMBIENT else NETA_SIMILAR)

    async def poll(self) -> None:
        try:
            frame = await self.ctx.read()
        except DriverError as exc:
            self._fault(exc)
            return
        if not isinstance(frame, ThermalFrame) or np.ndim(frame.frame_c) != 2 or not np.size(frame.frame_c):
            what = f"shape {np.shape(frame.frame_c)}" if isinstance(frame, ThermalFrame) else type(frame).__name__
            self._fault(DriverError(f"thermal: driver returned {what}, not a ThermalFrame with a 2-D frame"))
            return
        if self.faulted:
            self.faulted = False
            self.ctx.event("sensor_ok", "frames are good again", Severity.INFO)
        self.last = frame
        msg = self._analyse(frame, self.ctx.clock.monotonic())
        self.last_message = msg
        self.ctx.emit(msg)

    def _reflected(self, frame: ThermalFrame) -> float:
        return self.o.reflected_c if self.o.reflected_c is not None else float(frame.reflected_c)

    def _analyse(self, frame: ThermalFrame, now: float) -> dict[str, Any]:
        raw = np.asarray(frame.frame_c, dtype=np.float64)
        tr = self._reflected(frame)
        ambient = self.o.ambient_c if self.o.ambient_c is not None else tr
        msg: dict[str, Any] = {"ta_c": float(frame.ta_c), "ambient_c": ambient}
        for r in self.regions:
            stats = region_stats(raw, r.rect, (frame.emissivity, r.emissivity, tr))
            msg[r.name] = {} if stats is None else {
                "max_c": stats.max_c, "mean_c": stats.mean_c, "min_c": stats.min_c,
                "hot_row": stats.hot_row, "hot_col": stats.hot_col,
            }  # fmt: skip
        for r in self.regions:
            self._rise(r, msg, ambient, now)
        self._alarm_events(msg, now)
        return msg

    def _rise(self, r: Region, msg: dict[str, Any], ambient: float, now: float) -> None:
        """Delta-T, its class (confirmed), the trend; a ``thermal_severity`` event on a change."""
        m = msg[r.name]
        ref = ambient if r.reference == AMBIENT else msg.get(r.reference, {}).get("max_c")
        if "max_c" not in m or ref is None:
            return
        delta = m["max_c"] - ref
        m["delta_t_c"] = delta
        m["rate_c_per_min"] = self._trend(r.name, now, m["max_c"])
        confirmed = self.classes[r.name]
        previous = confirmed.current
        if confirmed.update(classify(delta, self._classes(r))):
            self._severity_event(r, confirmed.current, previous, delta)
        cls = confirmed.current
        m["severity"], m["priority"] = (cls.name, cls.priority) if cls else ("", 0)

    def _trend(self, name: str, now: float, value: float) -> float | None:
        h = self.history[name]
        h.append((now, value))
        while h and h[0][0] < now - self.o.rate_window_s:
            h.popleft()
        if len(h) < self.o.rate_min_points:
            return None
        rate = trend.rate_per_min([t for t, _ in h], [v for _, v in h])
        return rate if math.isfinite(rate) else None

    def _severity_event(
        self, r: Region, cls: SeverityClass | None, previous: SeverityClass | None, delta: float
    ) -> None:
        basis = "ambient" if r.reference == AMBIENT else f"similar component {r.reference}"
        if cls is None:
            text = f"{r.name}: {delta:.1f} K over {basis}, below every class (was {previous.name if previous else '-'})"
            sev = Severity.INFO
        else:
            text = f"{r.name}: {delta:.1f} K over {basis}: {cls.name} (priority {cls.priority}), {cls.action}"
            sev = _PRIORITY_SEVERITY.get(cls.priority, Severity.INFO)
            if previous is None or cls.priority < previous.priority:
                self._keep_alarm_frame(text)
        self.ctx.event(
            "thermal_severity", text, sev, region=r.name, severity_class=cls.name if cls else "",
            priority=cls.priority if cls else 0, previous=previous.name if previous else "",
            delta_t_c=delta, basis=basis, action=cls.action if cls else "",
        )  # fmt: skip

    def _alarm_events(self, msg: dict[str, Any], now: float) -> None:
        for t in self.alarms.update(numeric_leaves(msg), now):
            state = "raised" if t.active else "cleared"
            text = f"{t.feature} {t.level} {state}: {t.value:.4g} (limit {t.limit:.4g})"
            if t.active:
                self._keep_alarm_frame(text)
            self.ctx.event(
                "alarm", text, Severity.ALARM if t.active else Severity.INFO, feature=t.feature,
                level=t.level, active=t.active, value=t.value, limit=t.limit,
            )  # fmt: skip

    def _keep_alarm_frame(self, why: str) -> None:
        """The frame that raised an alarm or a class, for ``frame`` with ``{"alarm": true}``."""
        if self.last is None:
            return
        kept = self.alarm_frame
        if kept is not None and kept["frame"] is self.last:  # more than one reason on this frame
            kept["why"] = f"{kept['why']}\n{why}"
            return
        self.alarm_frame = {"why": why, "ts_ms": self.ctx.clock.time_ms(), "frame": self.last}

    def _fault(self, exc: DriverError) -> None:
        if not self.faulted:
            self.faulted = True
            self.ctx.event("sensor_fault", str(exc), Severity.ALARM, quality=exc.quality)
        self.ctx.emit({"ta_c": None}, {"ta_c": getattr(exc, "quality", Quality.BAD.value)})

    # -- commands --------------------------------------------------------------------------------
    async def command(self, name: str, args: Mapping[str, Any]) -> Any:
        """``frame`` {"alarm": false} -> the latest (or the last alarm's) frame, raw and as a PNG;
        ``sim_hot`` {"hot_c": 80, "growth_c_per_min": 0} -> switch the simulated hot spot."""
        if name == "sim_hot":
            return self._sim_hot(args)
        if name != "frame":
            raise UnknownCommand(name)
        if _truthy(args.get("alarm", False)):
            if self.alarm_frame is None:
                raise ValueError("frame: no alarm or class has been raised yet")
            return self._frame_answer(self.alarm_frame["frame"], self.alarm_frame["why"])
        if self.last is None:
            raise ValueError("frame: no frame read yet")
        return self._frame_answer(self.last, "")

    def _sim_hot(self, args: Mapping[str, Any]) -> dict[str, Any]:
        set_hot = getattr(self.ctx.driver, "set_hot", None)
        if set_hot is None:
            raise ValueError("sim_hot: the driver has no simulated scene")
        hot_c, growth = float(args.get("hot_c", 80.0)), float(args.get("growth_c_per_min", 0.0))
        if not (-20.0 <= hot_c <= 300.0 and 0.0 <= growth <= 100.0):
            raise ValueError(f"sim_hot: hot_c in [-20, 300] and growth_c_per_min in [0, 100], got {hot_c}, {growth}")
        set_hot(hot_c, growth)
        return {"hot_c": hot_c, "growth_c_per_min": growth}

    def _frame_answer(self, frame: ThermalFrame, why: str) -> dict[str, Any]:
        raw = np.asarray(frame.frame_c, dtype="<f4")
        overlays = [self._overlay(r, frame) for r in self.regions]
        title = f"{self.ctx.instance} TA {float(frame.ta_c):.1f}C" + (f"\n{why}" if why else "")
        return {
            "rows": int(raw.shape[0]),
            "cols": int(raw.shape[1]),
            "dtype": "float32",
            "unit": "degC",
            "emissivity": float(frame.emissivity),
            "ta_c": float(frame.ta_c),
            "reflected_c": float(frame.reflected_c),
            "why": why,
            "regions": [
                {"name": r.name, "rect": list(r.rect) if r.rect else None, "emissivity": r.emissivity}
                for r in self.regions
            ],
            "frame_c": np.ascontiguousarray(raw).tobytes(),
            "png": render_png(raw, overlays, scale=self.o.png_scale, title=title, emissivity=float(frame.emissivity)),
        }

    def _overlay(self, r: Region, frame: ThermalFrame) -> Overlay:
        e = (frame.emissivity, r.emissivity, self._reflected(frame))
        stats = region_stats(np.asarray(frame.frame_c, dtype=np.float64), r.rect, e)
        if stats is None:
            return Overlay(r.name, r.rect)
        return Overlay(r.name, r.rect, (stats.hot_row, stats.hot_col), f"{stats.max_c:.1f}C")
