"""The ``vibration`` plugin: one window per poll -> one compact feature message, events, capture."""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from edge_agent.drivers.contract import Quality, Waveform
from edge_agent.drivers.dotted_keys import numbers_at
from edge_agent.drivers.errors import DriverError
from edge_agent.plugins.common.alarms import AlarmSet
from edge_agent.plugins.common.state_store import state_store
from edge_agent.plugins.contract import Plugin, PluginContext, Severity, UnknownCommand
from edge_agent.plugins.vibration.analysis import Analysis, FeatureConfig, analyse
from edge_agent.plugins.vibration.bearing import NofM, Tone
from edge_agent.plugins.vibration.capture import Capture
from edge_agent.plugins.vibration.diagnosis import Fault, summary
from edge_agent.plugins.vibration.features import Workspace
from edge_agent.plugins.vibration.iso import Zone
from edge_agent.plugins.vibration.options import SpeedSource, VibrationOptions

INDICATED = (Tone.BPFO, Tone.BPFI, Tone.BSF)  # FTF shows with every ball fault: reported, not flagged
BEARING_FAULTS = {Tone.BPFO: "bearing_outer", Tone.BPFI: "bearing_inner", Tone.BSF: "bearing_ball"}
_ZONE_SEVERITY = {"A": Severity.INFO, "B": Severity.INFO, "C": Severity.WARNING, "D": Severity.ALARM}


def default_envelope_band(rate_hz: float) -> tuple[float, float]:
    """Envelope band when none is configured: rate/12.8 .. rate/3.2 (2-8 kHz at 25.6 kHz)."""
    return (rate_hz / 12.8, rate_hz / 3.2)


MAX_WINDOWS_PER_POLL = 3  # after a stall, analyse at most this many (newest) windows per poll


class VibrationPlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.o: VibrationOptions = ctx.options
        self.alarms = AlarmSet(self.o.alarms, state_store(ctx), ctx.instance)
        self.alarm_features = self.alarms.features()
        self.indicators = {t: NofM(self.o.fault_n, self.o.fault_m) for t in INDICATED}
        self.machine_faults = {f: NofM(self.o.fault_n, self.o.fault_m) for f in Fault}
        self.pending: list[Any] = []  # contiguous (n, axes) blocks not yet analysed
        self.pending_n = 0
        self.cfg: FeatureConfig | None = None
        self.cfg_key: tuple[Any, ...] = ()
        self.zone: str | None = None
        self.faulted = False
        self.overrun_episode = False
        self.overruns = 0
        self.episode_overruns = 0
        self.last_overrun_s = 0.0
        self.captures: list[Capture] = []
        self.last: Analysis | None = None
        self.work = Workspace()  # the analysis' arrays, reused window after window (one lane: never shared)

    # -- configuration resolved at the first block ---------------------------------------------
    def _config(self, wf: Waveform) -> FeatureConfig:
        key = (wf.rate_hz, wf.axes)
        if self.cfg is None or key != self.cfg_key:
            o = self.o
            missing = [a for a in o.axes or () if a not in wf.axes]
            if missing:
                raise ValueError(f"axes: {missing} not among the driver's axes {list(wf.axes)}")
            lo, hi = o.speed_range_rpm
            env = self._envelope_band(wf.rate_hz)
            self.cfg = FeatureConfig(
                axes=tuple(o.axes or wf.axes),
                iso_limits_mm_s=o.iso_limits(),
                velocity_band_hz=o.velocity_band_hz,
                peaks=o.peaks,
                bands_hz=tuple(o.bands_hz),
                speed_range_hz=(lo / 60.0, hi / 60.0),
                orders=o.bearing.orders() if o.bearing else None,
                envelope_band_hz=env,
                tone_harmonics=o.tone_harmonics,
                tone_tolerance_pct=o.tone_tolerance_pct,
                diagnosis_gate_mm_s=o.diagnosis_gate() if o.diagnosis else None,
                axial_axis=o.axial_axis,
            )
            self.cfg_key = key
            self.pending, self.pending_n = [], 0
        return self.cfg

    def _envelope_band(self, rate_hz: float) -> tuple[float, float]:
        """The configured band clipped below Nyquist; the default (and an event) if nothing is left."""
        band = self.o.envelope_band_hz or default_envelope_band(rate_hz)
        lo, hi = band[0], min(band[1], 0.49 * rate_hz)
        if lo < hi:
            return (lo, hi)
        fallback = default_envelope_band(rate_hz)
        self.ctx.event(
            "config",
            f"envelope_band_hz {list(band)} is above the Nyquist frequency at {rate_hz:g} Hz; using {list(fallback)}",
            Severity.WARNING,
        )
        return fallback

    def _columns(self, wf: Waveform) -> Any:
        samples = np.asarray(wf.samples)
        if samples.ndim == 1:
            samples = samples[:, None]
        if self.o.axes:
            samples = samples[:, [wf.axes.index(a) for a in self.o.axes]]
        return samples

    def _speed(self) -> tuple[float | None, bool]:
        """(shaft_hz or None, whether the spectrum may estimate it); a linked 0 rpm means stopped."""
        o = self.o
        if o.speed_source is SpeedSource.FIXED and o.rpm:
            return o.rpm / 60.0, False
        if o.speed_source is SpeedSource.SPECTRUM:
            return None, True
        if o.speed_source is SpeedSource.LINK and o.speed_instance:
            got = self.ctx.link.latest(o.speed_instance, o.speed_key)
            fresh = got is not None and got[1] <= o.speed_max_age_s and isinstance(got[0], (int, float))
            if fresh and got is not None:
                return (float(got[0]) / 60.0 if got[0] > 0 else None), False
            return None, o.speed_fallback_spectrum
        return None, False

    # -- the scheduled tick ----------------------------------------------------------------------
    async def poll(self) -> None:
        try:
            wf: Waveform = await self.ctx.read()
        except DriverError as exc:
            self._fault(exc)
            return
        if self.faulted:
            self.faulted = False
            self.ctx.event("sensor_ok", "readings are good again", Severity.INFO)
        for cap in self.captures:
            cap.feed(wf)
        self.captures = [c for c in self.captures if not c.future.done()]
        if wf.lost_samples:
            self._overrun(wf)
            return
        if self.overrun_episode and self.ctx.clock.monotonic() - self.last_overrun_s >= self.o.overrun_quiet_s:
            self.overrun_episode = False
            n = self.episode_overruns
            self.ctx.event("overrun_end", f"contiguous samples again ({n} overrun blocks)", Severity.INFO, blocks=n)
        for window in self._take_windows(wf):
            await self._analyse(window, wf.rate_hz, wf.t0_ms)

    def _take_windows(self, wf: Waveform) -> list[Any]:
        """Append the block; return the complete windows (a read a little short of a window is
        made up by the next one, which then completes two), keeping the contiguous rest. After a
        stall at most MAX_WINDOWS_PER_POLL newest windows are analysed, so CPU stays bounded."""
        cfg = self._config(wf)
        n_win = max(round((self.o.window_s or self.ctx.interval_s) * wf.rate_hz), 16)
        block = self._columns(wf)
        if len(block):
            self.pending.append(block)
            self.pending_n += len(block)
        if self.pending_n < n_win or not cfg.axes:
            return []
        data = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        k = len(data) // n_win
        first = max(0, k - MAX_WINDOWS_PER_POLL)
        windows, rest = [data[i * n_win : (i + 1) * n_win] for i in range(first, k)], data[k * n_win :]
        self.pending, self.pending_n = ([rest] if len(rest) else []), len(rest)
        return windows

    async def _analyse(self, window: Any, rate_hz: float, t0_ms: int) -> None:
        assert self.cfg is not None
        shaft_hz, estimate = self._speed()
        # 1-3 ms of numpy per window: run it in the I/O pool so the loop (MQTT, other instances)
        # is never held; numpy releases the GIL for the FFTs.
        a = await self.ctx.call(
            functools.partial(analyse, estimate_speed=estimate, work=self.work), window, rate_hz, self.cfg, shaft_hz
        )
        self.last = a
        now = self.ctx.clock.monotonic()
        self._bearing_indicators(a)
        self._machine_faults(a)
        self._iso_event(a.message)
        for t in self.alarms.update(numbers_at(a.message, self.alarm_features), now):
            sev = Severity.ALARM if t.active else Severity.INFO
            state = "raised" if t.active else "cleared"
            self.ctx.event(
                "alarm",
                f"{t.feature} {t.level} {state}: {t.value:.4g} (limit {t.limit:.4g})",
                sev,
                feature=t.feature,
                level=t.level,
                active=t.active,
                value=t.value,
                limit=t.limit,
            )
        self.ctx.emit(a.message)

    def _bearing_indicators(self, a: Analysis) -> None:
        bearing = a.message.get("bearing")
        if not bearing:
            return
        for tone, ind in self.indicators.items():
            info = bearing[tone.value]
            changed = ind.update(info["ratio_db"] >= self.o.fault_ratio_db)
            info["fault"] = ind.active
            if changed is None:
                continue
            what = "indicated" if changed else "cleared"
            self.ctx.event(
                "bearing_fault",
                f"bearing {tone.value.upper()} fault {what}: {info['ratio_db']:.1f} dB over floor at "
                f"{info['hz']:.1f} Hz",
                Severity.ALARM if changed else Severity.INFO,
                tone=tone.value,
                active=changed,
                ratio_db=info["ratio_db"],
                hz=info["hz"],
            )

    def _machine_faults(self, a: Analysis) -> None:
        """N-of-M per fault over the windows' confidences; ``machine_fault`` raised/cleared by exception."""
        diag = a.message.get("diagnosis")
        if diag is None:
            return
        active: dict[str, float] = {}
        for fault, ind in self.machine_faults.items():
            d = a.diagnoses[fault]
            changed = ind.update(d.confidence >= self.o.diagnosis_confidence)
            diag[fault.value]["active"] = ind.active
            if ind.active:
                active[fault.value] = d.confidence
            if changed is not None:
                what = "diagnosed" if changed else "cleared"
                self.ctx.event(
                    "machine_fault",
                    f"{fault.value} {what} (confidence {d.confidence:.2f}): {d.evidence}",
                    Severity.ALARM if changed else Severity.INFO,
                    fault=fault.value,
                    active=changed,
                    confidence=d.confidence,
                    pattern=d.kind,
                    evidence=d.evidence,
                )
        bearing = a.message.get("bearing", {})
        for tone, name in BEARING_FAULTS.items():
            if bearing.get(tone.value, {}).get("fault"):
                active[name] = 1.0
        diag["faults"] = summary(active)

    def _iso_event(self, msg: dict[str, Any]) -> None:
        zone = msg["iso_zone"]
        if self.zone is not None and zone != self.zone:
            v = msg["velocity_rms_mm_s"]
            self.ctx.event(
                "iso_zone",
                f"ISO 20816-3 zone {self.zone} -> {zone} ({v:.2f} mm/s): {Zone(zone).description}",
                _ZONE_SEVERITY[zone],
                zone=zone,
                previous=self.zone,
                velocity_rms_mm_s=v,
            )
        self.zone = zone

    def _overrun(self, wf: Waveform) -> None:
        """Discard the contiguous buffer; one event per episode (ends after overrun_quiet_s clean)."""
        self.overruns += 1
        self.pending, self.pending_n = [], 0
        self.last_overrun_s = self.ctx.clock.monotonic()
        self.episode_overruns = self.episode_overruns + 1 if self.overrun_episode else 1
        if not self.overrun_episode:
            self.overrun_episode = True
            self.ctx.event(
                "overrun",
                f"{wf.lost_samples} samples lost; block not analysed",
                Severity.WARNING,
                lost_samples=wf.lost_samples,
            )
        vals = {"lost_samples": wf.lost_samples, "overruns": self.overruns}
        self.ctx.emit(vals, {"lost_samples": Quality.OVERRUN.value})

    def _fault(self, exc: DriverError) -> None:
        self.pending, self.pending_n = [], 0
        if not self.faulted:
            self.faulted = True
            self.ctx.event("sensor_fault", str(exc), Severity.ALARM, quality=exc.quality)
        self.ctx.emit({"velocity_rms_mm_s": None}, {"velocity_rms_mm_s": exc.quality})

    # -- commands --------------------------------------------------------------------------------
    async def command(self, name: str, args: Mapping[str, Any]) -> Any:
        """``capture`` {"seconds": S} -> raw samples; ``sim_fault`` {...} -> switch a sim fault."""
        if name == "capture":
            return await self._capture(args)
        if name == "sim_fault":
            return self._sim_fault(args)
        raise UnknownCommand(name)

    async def _capture(self, args: Mapping[str, Any]) -> dict[str, Any]:
        seconds = float(args.get("seconds", 1.0))
        if not 0 < seconds <= self.o.capture_max_s or math.isnan(seconds):
            raise ValueError(f"seconds: must be in (0, {self.o.capture_max_s}], got {seconds}")
        cap = Capture(seconds, asyncio.get_running_loop())
        self.captures.append(cap)
        timeout_s = seconds + 3 * self.ctx.interval_s + 5.0
        try:
            result = await asyncio.wait_for(asyncio.shield(cap.future), timeout_s)
        except TimeoutError:
            raise TimeoutError(f"capture: no {seconds} s of contiguous samples in {timeout_s:.0f} s") from None
        finally:
            if cap in self.captures:
                self.captures.remove(cap)
        result.update(self._capture_context(result["rate_hz"]))
        return result

    def _capture_context(self, rate_hz: float) -> dict[str, Any]:
        """Extra meta for the analyst's plot: speed, bearing tones and the envelope band."""
        extra: dict[str, Any] = {}
        cfg = self.cfg
        if cfg is not None:
            extra["envelope_band_hz"] = list(cfg.envelope_band_hz)
        shaft = self.last.shaft_hz if self.last else self._speed()[0]
        if shaft:
            extra["rpm"] = shaft * 60.0
            if cfg is not None and cfg.orders is not None:
                extra["bearing_hz"] = {t.value: f for t, f in cfg.orders.hz(shaft).items()}
        return extra

    def _sim_fault(self, args: Mapping[str, Any]) -> dict[str, Any]:
        set_fault = getattr(self.ctx.driver, "set_fault", None)
        if set_fault is None:
            raise ValueError("sim_fault: the driver has no simulated machine")
        fault = str(args.get("fault", "none"))
        set_fault(fault, float(args.get("fault_g", 0.5)), float(args.get("growth_g_per_min", 0.0)))
        return {"fault": fault}
