"""The ``temperature`` plugin: per channel a temperature with quality, its rate of change and
the time to the next high alarm; limit alarms and a rate-of-change warning with hysteresis and
on-delay; sensor health events; report by exception.

Published values, per channel ``name`` (unit key ``u`` = c, f or k from ``unit``)::

    {"bearing_de": {"temp_c": 61.2, "rate_c_per_min": 5.9, "time_to_alarm_s": 190}}

A channel that is not good publishes ``None`` with its quality (``q["bearing_de.temp_c"]``):
the last good value is never republished as if fresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_agent.drivers.contract import Capability, ChannelReading, Quality, TemperatureReading, Values
from edge_agent.drivers.errors import DriverError
from edge_agent.plugins.common import trend
from edge_agent.plugins.common.alarms import Alarm, AlarmConfig, AlarmSet, AlarmTransition, Direction
from edge_agent.plugins.common.report_by_exception import Deadband, ReportByException
from edge_agent.plugins.common.state_store import state_store
from edge_agent.plugins.contract import Plugin, PluginContext, PluginSpec, Severity
from edge_agent.plugins.temperature.channel import ChannelTracker, Outcome
from edge_agent.plugins.temperature.declared import declared, references
from edge_agent.plugins.temperature.options import TemperatureOptions, Unit, check_options

RATE_LEVEL = "rate_warning"
TIME_TO_ALARM_KEY = "time_to_alarm_s"
CRITICAL_LEVELS = frozenset({"high_high", "low_low"})


def from_c(value_c: float, unit: Unit) -> float:
    """A temperature in degC expressed in ``unit``."""
    if unit is Unit.F:
        return value_c * 1.8 + 32.0
    if unit is Unit.K:
        return value_c + 273.15
    return value_c


def delta_from_c(delta_c: float, unit: Unit) -> float:
    """A temperature difference (or rate) in degC expressed in ``unit``."""
    return delta_c * 1.8 if unit is Unit.F else delta_c


def channels_of(reading: Any) -> Mapping[str, ChannelReading]:
    """Per-channel readings of a TemperatureReading, or of plain Values taken as degC."""
    if isinstance(reading, TemperatureReading):
        return reading.channels
    if isinstance(reading, Values):
        return {
            k: ChannelReading(float(v), quality=Quality(reading.quality.get(k, Quality.GOOD)))
            for k, v in reading.values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
    raise DriverError(f"temperature: driver returned {type(reading).__name__}, not a TemperatureReading")


class TemperaturePlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        o: TemperatureOptions = ctx.options
        self.o = o
        u = str(o.unit).lower()
        self.temp_key, self.rate_key = f"temp_{u}", f"rate_{u}_per_min"
        self.alarms = AlarmSet([self._normalised(a) for a in o.alarms], state_store(ctx), ctx.instance)
        self.rate_alarms: dict[str, Alarm] = {}
        self.trackers: dict[str, ChannelTracker] = {}
        self.rbe: ReportByException | None = None
        self._snapshot_at = -1e18  # when every value was last sent together (the heartbeat)
        self.driver_fault: Quality | None = None

    def _normalised(self, a: AlarmConfig) -> AlarmConfig:
        if "." in a.feature:
            return a
        return AlarmConfig(
            feature=f"{a.feature}.{self.temp_key}", level=a.level, limit=a.limit, direction=a.direction,
            hysteresis=a.hysteresis, on_delay_s=a.on_delay_s, off_delay_s=a.off_delay_s,
        )  # fmt: skip

    def _tracker(self, name: str) -> ChannelTracker:
        tracker = self.trackers.get(name)
        if tracker is None:
            tracker = self.trackers[name] = ChannelTracker(name, self.o)
            limit = self.o.rate_warning_c_per_min
            if limit is not None:
                lim_u = delta_from_c(limit, self.o.unit)
                cfg = AlarmConfig(
                    feature=f"{name}.{self.rate_key}", level=RATE_LEVEL, limit=lim_u,
                    hysteresis=0.25 * lim_u, on_delay_s=self.o.rate_warning_on_delay_s,
                )  # fmt: skip
                self.rate_alarms[name] = Alarm(cfg)
            self.rbe = None  # the set of keys changed: rebuild the filter with its bands
        return tracker

    async def poll(self) -> None:
        now = self.ctx.clock.monotonic()
        try:
            reading = await self.ctx.read()
            channels = channels_of(reading)
        except DriverError as exc:
            self._driver_failed(exc, now)
            return
        recovered = self.driver_fault is not None
        if recovered:
            self.driver_fault = None
            self.ctx.event("sensor_ok", "driver reads again", Severity.INFO, channel="*")
        outcomes = {name: self._tracker(name).update(ch, now) for name, ch in channels.items()}
        for name, out in outcomes.items():
            self._health_events(name, out, quiet_recovery=recovered)
        self._publish(outcomes, now, getattr(reading, "ts_ms", None))

    def _driver_failed(self, exc: DriverError, now: float) -> None:
        try:
            q = Quality(exc.quality)
        except ValueError:
            q = Quality.BAD
        if self.driver_fault is not q:
            self.driver_fault = q
            self.ctx.event("sensor_fault", f"driver read failed: {exc}", Severity.ALARM, channel="*", quality=str(q))
        outcomes = {name: tr.fail(q, str(exc)) for name, tr in self.trackers.items()}
        self._publish(outcomes, now, None)

    def _health_events(self, name: str, out: Outcome, *, quiet_recovery: bool) -> None:
        for h in out.health:
            if h.quality is Quality.GOOD:
                if not quiet_recovery:
                    self.ctx.event("sensor_ok", f"{name}: {h.detail}", Severity.INFO, channel=name)
                continue
            message = f"{name}: {h.quality}" + ("" if h.detail == h.quality else f" ({h.detail})")
            self.ctx.event(
                "sensor_fault", message, Severity.ALARM,
                channel=name, quality=str(h.quality), detail=h.detail, value_c=h.value_c,
            )  # fmt: skip

    def _values_by_key(self, outcomes: Mapping[str, Outcome]) -> tuple[dict[str, Any], dict[str, str]]:
        """The channels' outcomes as dotted-key values in the configured unit, and their qualities."""
        flat: dict[str, Any] = {}
        quality: dict[str, str] = {}
        unit = self.o.unit
        for name, out in outcomes.items():
            tk, rk = f"{name}.{self.temp_key}", f"{name}.{self.rate_key}"
            flat[tk] = None if out.temp_c is None else from_c(out.temp_c, unit)
            flat[rk] = None if out.rate_c_per_min is None else delta_from_c(out.rate_c_per_min, unit)
            if out.quality is not Quality.GOOD:
                quality[tk] = quality[rk] = str(out.quality)
            if self.o.publish_cold_junction:
                flat[f"{name}.cj_c"] = out.cold_junction_c
        return flat, quality

    def _publish(self, outcomes: Mapping[str, Outcome], now: float, ts_ms: int | None) -> None:
        flat, quality = self._values_by_key(outcomes)
        good = {k: v for k, v in flat.items() if v is not None and k not in quality}
        for t in self.alarms.update(good, now):
            self._alarm_event(t, outcomes)
        for name, alarm in self.rate_alarms.items():
            rate = good.get(f"{name}.{self.rate_key}")
            rate_t = alarm.update(rate, now) if rate is not None else None
            if rate_t is not None:
                self._alarm_event(rate_t, outcomes)
        for name in outcomes:
            if self._high_limits(name):
                flat[f"{name}.{TIME_TO_ALARM_KEY}"] = self._time_to_alarm_s(name, good)
        self._emit(flat, quality, now, ts_ms)

    def _high_limits(self, name: str) -> list[Alarm]:
        key = f"{name}.{self.temp_key}"
        return [a for a in self.alarms.alarms if a.cfg.feature == key and a.cfg.direction is Direction.HIGH]

    def _time_to_alarm_s(self, name: str, good: Mapping[str, Any]) -> int | None:
        """Seconds until the lowest inactive high limit at the present rate (coarsened); None if
        it is not on its way within the horizon."""
        value, rate = good.get(f"{name}.{self.temp_key}"), good.get(f"{name}.{self.rate_key}")
        min_rate = delta_from_c(self.o.time_to_alarm_min_rate_c_per_min, self.o.unit)
        if value is None or rate is None or rate < min_rate:
            return None  # not trending: a countdown from noise would be a fiction
        limits = [a.cfg.limit for a in self._high_limits(name) if not a.active and a.cfg.limit > value]
        if not limits:
            return None
        seconds = trend.time_to_threshold_s(value, rate, min(limits))
        return None if seconds is None or seconds > self.o.time_to_alarm_horizon_s else trend.coarse_seconds(seconds)

    def _alarm_event(self, t: AlarmTransition, outcomes: Mapping[str, Outcome]) -> None:
        channel = t.feature.split(".", 1)[0]
        kind = "rate_warning" if t.level == RATE_LEVEL else "alarm"
        if not t.active:
            severity = Severity.INFO
        elif kind == "rate_warning":
            severity = Severity.WARNING
        else:
            severity = Severity.CRITICAL if t.level in CRITICAL_LEVELS else Severity.ALARM
        verb = "raised" if t.active else "cleared"
        message = f"{t.feature} {t.level} {verb}: {t.value:.2f} (limit {t.limit:g})"
        fields: dict[str, Any] = {
            "channel": channel, "feature": t.feature, "level": t.level, "active": t.active,
            "value": t.value, "limit": t.limit, "unit": str(self.o.unit),
        }  # fmt: skip
        if kind == "rate_warning" and t.active and self._high_limits(channel):
            fields[TIME_TO_ALARM_KEY] = self._time_to_alarm_s(channel, {
                f"{channel}.{self.temp_key}": from_c(outcomes[channel].temp_c or 0.0, self.o.unit),
                f"{channel}.{self.rate_key}": t.value,
            })  # fmt: skip
        self.ctx.event(kind, message, severity, **fields)

    def _make_rbe(self, keys: list[str]) -> ReportByException:
        bands: dict[str, Deadband] = {}
        for key in keys:
            if key.endswith(self.temp_key) or key.endswith(".cj_c"):
                bands[key] = Deadband(absolute=self.o.deadband_deg)
            elif key.endswith(self.rate_key):
                bands[key] = Deadband(absolute=self.o.rate_deadband_per_min)
        # Heartbeats are whole snapshots sent by _emit: per-key timers would drift apart and
        # send one value per message.
        return ReportByException(heartbeat_s=None, bands=bands)

    def _emit(self, flat: dict[str, Any], quality: dict[str, str], now: float, ts_ms: int | None) -> None:
        if self.o.report_by_exception:
            if self.rbe is None:
                self.rbe = self._make_rbe(list(flat))
            if now - self._snapshot_at >= self.o.heartbeat_s:  # 0: a snapshot every poll
                self.rbe.forget()
                self._snapshot_at = now
            flat, quality = self.rbe.filter(flat, quality, now)
        if not flat:
            return
        nested: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            channel, sub = key.split(".", 1)
            nested.setdefault(channel, {})[sub] = value
        self.ctx.emit(nested, quality, ts_ms=ts_ms)


SPEC = PluginSpec(
    name="temperature",
    factory=TemperaturePlugin,
    options=TemperatureOptions,
    requires=Capability.TEMPERATURE,
    description="Thermocouples and RTDs: NIST-corrected degC, trends, alarms, sensor health, report by exception",
    check=check_options,
    values=declared,
    references=references,
)
