"""Calibration records and their application to readings (docs/maintenance.md#calibration).

A channel is ``(instance, key)``: a value key the instance's driver returns (a thermocouple
channel, a PLC tag) or an axis of a waveform driver (accelerometer sensitivity). The active
record of each channel lives in ``maintenance.sqlite`` (kv ``calibration``); every calibration
is also appended as a permanent record and published retained on
``{p}/{agent}/calibration/{instance}/{key}``. The correction runs on the driver's reading, before
the plugin computes features and alarms.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from edge_agent.agent.maintenance.calibration_math import IDENTITY, Coefficients, Mode, errors, fit, fit_sensitivity
from edge_agent.drivers.contract import ChannelReading, Linearisation, TcType, Values, Waveform, temperature_reading
from edge_agent.plugins.contract import Severity, StateStore
from edge_agent.plugins.temperature import its90

NS = "calibration"
DAY_MS = 86_400_000
REMIND_S = 86_400.0  # an overdue channel is reminded once a day (of time that passed: monotonic)
FRESH_S = 30.0  # a "point" takes the live reading only if it is at most this old
ARGS = {
    "instance",
    "channel",
    "by",
    "action",
    "reference",
    "reading",
    "points",
    "mode",
    "interval_days",
    "warn_days",
    "uncertain_when_due",
    "note",
    "unit",
    "via",  # where it came from ("panel 10.0.4.7"): the audit trail's, every action carries it
}
MAX_CHECKS = 20  # as-left check readings kept on a record
ERROR_DECIMALS = 4  # errors are shown to 0.0001 of the channel's unit: finer is float noise, not a measurement

EventFn = Callable[[str, str, str, Severity, dict[str, Any]], None]  # (instance, kind, msg, severity, fields)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _number(
    args: Mapping[str, Any], key: str, default: float | None = None, lo: float = -math.inf, hi: float = math.inf
) -> float:
    v = args.get(key, default)
    if isinstance(v, str):  # from `edge-agent cmd ... --arg reference=100.0`
        try:
            v = float(v)
        except ValueError:
            raise ValueError(f"{key}: a finite number is required, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{key}: a finite number is required, got {v!r}")
    if not lo <= v <= hi:
        raise ValueError(f"{key}: must be in {lo:g}..{hi:g}, got {v!r}")
    return float(v)


def _err(x: float) -> float:
    """An error rounded to what it means (float noise such as 0.9000000000000057 is not a measurement)."""
    return round(float(x), ERROR_DECIMALS) + 0.0  # + 0.0: no "-0.0"


def _worst(errs: Iterable[float]) -> float | None:
    """The signed error of largest magnitude (its sign says whether the channel read high or low)."""
    got = [float(e) for e in errs]
    return _err(max(got, key=abs)) if got else None


def fmt_error(err: float | None, unit: str) -> str:
    """A signed error with its unit, as people read it: "-0.95 degC" (reading minus reference)."""
    if err is None:
        return "not checked"
    return f"{err:+.3f} {unit}".rstrip() if abs(err) < 10 else f"{err:+.1f} {unit}".rstrip()


def _span(ms: float) -> str:
    """A time span the way a planner says it: 3.5 d, 5.2 h or 12 min."""
    if ms >= DAY_MS:
        return f"{ms / DAY_MS:.1f} d"
    if ms >= 3_600_000:
        return f"{ms / 3_600_000:.1f} h"
    return f"{max(0.0, ms) / 60_000:.0f} min"


def _flag(v: Any) -> bool:
    """A boolean argument; "true"/"false" strings too (``edge-agent cmd --arg``)."""
    if isinstance(v, str):
        if v.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"uncertain_when_due: true or false, got {v!r}")
        return v.lower() in ("true", "1", "yes")
    return bool(v)


def _rms(axis: Any) -> float:
    a = np.asarray(axis, dtype=np.float64)
    return float(np.sqrt(np.mean((a - a.mean()) ** 2))) if a.size else math.nan


def _due_text(rec: Mapping[str, Any]) -> str:
    """The due date as a technician reads it: "2026-12-07 21:29 UTC", not ISO "2026-12-07T21:29:21+00:00"."""
    return f"{str(rec['next_due'])[:16].replace('T', ' ')} UTC"


class Calibrations:
    """Active calibrations, the last raw readings, pending reference points, due checks."""

    def __init__(self, store: StateStore, publish: Callable[[str, str, dict[str, Any]], None], event: EventFn) -> None:
        self.store, self.publish, self.event = store, publish, event
        self.active: dict[tuple[str, str], tuple[Coefficients, dict[str, Any]]] = {}
        self.raw: dict[str, tuple[Any, float]] = {}  # instance -> (last uncorrected reading, monotonic)
        self.pending: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self.due_state: dict[tuple[str, str], tuple[str, float]] = {}  # -> (state, when told: monotonic s)
        self.uncertain: dict[str, set[str]] = {}  # instance -> channels past due that publish "uncertain"
        # channels whose calibration changed since their last reading -> the correction before it
        self.changed: dict[tuple[str, str], Coefficients] = {}
        self._lock = threading.Lock()
        saved = store.load(NS, "active") or {}
        for key, rec in dict(saved).items():
            inst, _, ch = str(key).partition("/")
            self.active[(inst, ch)] = (Coefficients.from_dict(rec["coefficients"]), rec)

    # -- the data path (runs in the I/O thread of the reading instance) ------------------------
    def correct(self, instance: str, reading: Any) -> Any:
        """Remember the uncorrected reading and return it corrected."""
        self.raw[instance] = (reading, time.monotonic())
        mine = {ch: c for (inst, ch), (c, _) in self.active.items() if inst == instance}
        if not mine and not self.changed:
            return reading
        if isinstance(reading, Waveform):
            return _correct_waveform(reading, mine)
        channels = getattr(reading, "channels", None)
        if isinstance(channels, Mapping):  # a TemperatureReading: correct the channels, rebuild the view
            before = {ch: self.changed.pop((instance, ch)) for ch in channels if (instance, ch) in self.changed}
            if not mine and not before:
                return reading
            fixed = {
                n: _corrected_channel(c, mine.get(n, IDENTITY), before.get(n)) if n in mine or n in before else c
                for n, c in channels.items()
            }
            return temperature_reading(fixed, reading.ts_ms)
        if not mine:
            return reading
        if isinstance(reading, Values):
            vals = dict(reading.values)
            for ch, c in mine.items():
                v = vals.get(ch)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    vals[ch] = c.apply(float(v))
            return dataclasses.replace(reading, values=vals)
        return reading

    def raw_value(self, instance: str, channel: str) -> tuple[float, float] | None:
        """(uncorrected value, age s) of a channel; an axis gives the RMS of the last block."""
        got = self.raw.get(instance)
        if got is None:
            return None
        reading, at = got
        age = time.monotonic() - at
        if isinstance(reading, Waveform):
            if channel not in reading.axes:
                return None
            samples = np.asarray(reading.samples)
            return _rms(samples[:, reading.axes.index(channel)] if samples.ndim > 1 else samples), age
        channels = getattr(reading, "channels", None)
        if isinstance(channels, Mapping) and channel in channels:
            v = stage_c(channels[channel])
            return (math.nan if v is None else v), age
        values = getattr(reading, "values", {})
        v = values.get(channel) if isinstance(values, Mapping) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v), age
        return None

    def channels(self, instance: str) -> list[str]:
        """Numeric channels seen in the instance's last reading."""
        got = self.raw.get(instance)
        if got is None:
            return []
        reading = got[0]
        if isinstance(reading, Waveform):
            return list(reading.axes)
        channels = getattr(reading, "channels", None)
        if isinstance(channels, Mapping):
            return list(channels)
        values = getattr(reading, "values", {})
        return [k for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]

    def is_waveform(self, instance: str) -> bool:
        got = self.raw.get(instance)
        return got is not None and isinstance(got[0], Waveform)

    # -- the command ---------------------------------------------------------------------------
    def command(self, args: Mapping[str, Any], declared: Iterable[str] | None) -> dict[str, Any]:
        """``calibrate``: point / apply / cancel / clear / show. ValueError refuses, changing nothing."""
        unknown = sorted(set(args) - ARGS)
        if unknown:
            raise ValueError(f"calibrate: unknown argument(s) {unknown} (known: {sorted(ARGS)})")
        inst, ch = args.get("instance"), args.get("channel")
        if not isinstance(inst, str) or not isinstance(ch, str) or not ch:
            raise ValueError('calibrate needs "instance" and "channel" (a value key of the instance\'s driver)')
        known = list(declared) if declared is not None else self.channels(inst)
        if ch not in known:
            shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
            raise ValueError(f"channel {ch!r} is not a numeric value of instance {inst!r} (has: {shown or 'none yet'})")
        action = str(args.get("action") or ("apply" if "points" in args else "point"))
        key = (inst, ch)
        if action == "show":
            return self.show(key)
        if action == "cancel":
            return {"channel": f"{inst}/{ch}", "dropped_points": len(self.pending.pop(key, []))}
        by = args.get("by")
        if not isinstance(by, str) or not by.strip() or len(by) > 64:
            raise ValueError('"by": who calibrates (a name or badge, 1-64 characters) is required')
        if action == "point":
            return self._point(key, args)
        if action == "apply":
            return self._apply(key, args, by.strip())
        if action == "check":
            return self._check(key, args, by.strip())
        if action == "clear":
            return self._clear(key, by.strip(), str(args.get("note") or ""))
        raise ValueError(f"action: one of point, apply, check, cancel, clear, show; got {action!r}")

    def _point(self, key: tuple[str, str], args: Mapping[str, Any]) -> dict[str, Any]:
        ref = _number(args, "reference")
        raw = _number(args, "reading") if "reading" in args else self._live(key)
        pts = self.pending.setdefault(key, [])
        if len(pts) >= 20:
            raise ValueError("at most 20 reference points per calibration")
        same = [p for p in pts if abs(p[0] - raw) <= 1e-6 * max(1.0, abs(raw)) and p[1] != ref]
        pts.append((raw, ref))
        out: dict[str, Any] = {
            "channel": f"{key[0]}/{key[1]}",
            "points": [list(p) for p in pts],
            "reading": raw,
            "reference": ref,
        }
        if same:  # the usual slip: the next point taken before the sensor reached the new reference
            out["warning"] = (
                f"the reading {raw:g} has not changed since the point at reference {same[0][1]:g}: is the sensor "
                "in the new reference yet? (action=cancel drops the points)"
            )
        return out

    def _live(self, key: tuple[str, str]) -> float:
        """The channel's fresh uncorrected value at the stage the correction applies to."""
        got = self.raw_value(*key)
        if got is None or not math.isfinite(got[0]):
            raise ValueError(f"{key[0]}/{key[1]}: no valid live reading to pair with the reference")
        if got[1] > FRESH_S:
            raise ValueError(f"{key[0]}/{key[1]}: the live reading is {got[1]:.0f} s old (instance stalled?)")
        return got[0]

    def _points(self, key: tuple[str, str], args: Mapping[str, Any]) -> list[tuple[float, float]]:
        given = args.get("points")
        if given is None:
            pts = list(self.pending.get(key, []))
            if not pts:
                raise ValueError(f"{key[0]}/{key[1]}: no reference points (send action=point first, or points=[...])")
            return pts
        if not isinstance(given, list) or not given:
            raise ValueError('points: a list of {"reading": R, "reference": X} (or [R, X] pairs)')
        out = []
        for i, p in enumerate(given):
            pair = (p.get("reading"), p.get("reference")) if isinstance(p, Mapping) else p
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"points[{i}]: expected {{reading, reference}}, got {p!r}")
            out.append((_number({"reading": pair[0]}, "reading"), _number({"reference": pair[1]}, "reference")))
        return out

    def _apply(self, key: tuple[str, str], args: Mapping[str, Any], by: str) -> dict[str, Any]:
        pts = self._points(key, args)
        wave = self.is_waveform(key[0])
        mode_arg = args.get("mode") or ("linear" if len(pts) >= 2 else "offset")
        try:
            mode = Mode(str(mode_arg))
        except ValueError:
            raise ValueError(f"mode: one of offset, linear, table; got {mode_arg!r}") from None
        interval = _number(args, "interval_days", 365.0, 1e-4, 3650.0)
        warn = _number(args, "warn_days", min(14.0, interval / 4), 0.0, interval)
        coeff = fit_sensitivity(pts) if wave else fit(pts, mode)
        old = self.active.get(key)
        old_coeff = old[0] if old else Coefficients(Mode.OFFSET)
        found, residual = errors(pts, old_coeff), errors(pts, coeff)
        now = time.time_ns() // 1_000_000
        due = now + round(interval * DAY_MS)
        rec: dict[str, Any] = {
            "instance": key[0],
            "channel": key[1],
            "unit": self.unit(key[0], args),
            "when": _iso(now),
            "ts_ms": now,
            "by": by,
            "note": str(args.get("note") or "")[:500],
            # reading: the uncorrected value at the stage the correction applies to; errors are
            # signed, reading minus reference (as found: what the channel published before)
            "references": [
                {"reading": r, "reference": x, "as_found_error": _err(f), "fit_residual": _err(e)}
                for (r, x), f, e in zip(pts, found, residual, strict=True)
            ],
            "as_found_error": _worst(found),
            "fit_residual": _worst(residual),
            "as_left": [],  # check readings after apply (action=check), measured, not fitted
            "as_left_error": None,
            "coefficients": coeff.to_dict(),
            "previous_coefficients": old_coeff.to_dict(),
            "interval_days": interval,
            "warn_days": warn,
            "next_due": _iso(due),
            "next_due_ms": due,
            "uncertain_when_due": _flag(args.get("uncertain_when_due", False)),
        }
        rec["record_id"] = self.store.record(NS, f"{key[0]}/{key[1]}", rec)
        with self._lock:
            self._mark_changed(key, old_coeff)
            self.active[key] = (coeff, rec)
            self.pending.pop(key, None)
            self.due_state.pop(key, None)
            self._refresh_uncertain(now)
        self._save()
        self.publish(key[0], key[1], rec)
        msg = (
            f"{key[0]}/{key[1]} calibrated by {by}: as found {fmt_error(rec['as_found_error'], rec['unit'])} "
            f"(reading minus reference); next due {_due_text(rec)}; "
            "as left: send action=check against a reference"
        )
        self.event(key[0], "calibrated", msg, Severity.INFO, {"channel": key[1], "record_id": rec["record_id"]})
        return rec

    def _mark_changed(self, key: tuple[str, str], before: Coefficients) -> None:
        """Remember the correction before a change for the channel's next reading (a temperature
        channel tells its trend logic the step); other kinds have no trend to tell."""
        got = self.raw.get(key[0])
        if got is not None and isinstance(getattr(got[0], "channels", None), Mapping):
            self.changed.setdefault(key, before)

    def unit(self, instance: str, args: Mapping[str, Any]) -> str:
        """The channel's unit: degC for a temperature, the waveform's unit, else ``unit`` if given."""
        got = self.raw.get(instance)
        if got is not None and isinstance(getattr(got[0], "channels", None), Mapping):
            return "degC"
        if got is not None and isinstance(got[0], Waveform):
            return str(got[0].unit)
        unit = args.get("unit", "")
        if not isinstance(unit, str) or len(unit) > 16:
            raise ValueError(f"unit: a short text such as 'bar' or 'degC', got {unit!r}")
        return unit

    def _check(self, key: tuple[str, str], args: Mapping[str, Any], by: str) -> dict[str, Any]:
        """As left: a reading of the corrected channel against a reference, after apply (measured)."""
        got = self.active.get(key)
        if got is None:
            raise ValueError(f"{key[0]}/{key[1]} has no calibration to check (apply one first)")
        coeff, rec = got
        ref = _number(args, "reference")
        reading = _number(args, "reading") if "reading" in args else coeff.apply(self._live(key))
        now = time.time_ns() // 1_000_000
        error = _err(reading - ref)
        check: dict[str, Any] = {"reference": ref, "reading": reading, "error": error, "when": _iso(now), "by": by}
        with self._lock:
            rec["as_left"] = [*rec.get("as_left", []), check][-MAX_CHECKS:]
            rec["as_left_error"] = _worst([c["error"] for c in rec["as_left"]])
        unit = rec.get("unit", "")
        logged = {"instance": key[0], "channel": key[1], "check": check, "unit": unit, "of": rec.get("record_id")}
        self.store.record(NS, f"{key[0]}/{key[1]}", logged)
        self._save()
        self.publish(key[0], key[1], rec)
        msg = f"{key[0]}/{key[1]} checked by {by}: as left {fmt_error(error, unit)} at {ref:g} {unit}".rstrip()
        self.event(key[0], "calibration_checked", msg, Severity.INFO, {"channel": key[1], **check})
        return {"channel": f"{key[0]}/{key[1]}", "unit": unit, **check, "as_left_error": rec["as_left_error"]}

    def _clear(self, key: tuple[str, str], by: str, note: str) -> dict[str, Any]:
        if key not in self.active:
            raise ValueError(f"{key[0]}/{key[1]} has no calibration to clear")
        now = time.time_ns() // 1_000_000
        rec = {
            "instance": key[0],
            "channel": key[1],
            "when": _iso(now),
            "ts_ms": now,
            "by": by,
            "note": note,
            "cleared": True,
            "coefficients": Coefficients(Mode.OFFSET).to_dict(),
        }
        rec["record_id"] = self.store.record(NS, f"{key[0]}/{key[1]}", rec)
        with self._lock:
            self._mark_changed(key, self.active[key][0])
            self.active.pop(key, None)
            self._refresh_uncertain(now)
        self._save()
        self.publish(key[0], key[1], rec)
        return rec

    def show(self, key: tuple[str, str]) -> dict[str, Any]:
        got = self.active.get(key)
        history = self.store.records(NS, f"{key[0]}/{key[1]}", limit=10)
        return {
            "active": got[1] if got else None,
            "pending": [list(p) for p in self.pending.get(key, [])],
            "history": history,
        }

    def _save(self) -> None:
        self.store.save(NS, "active", {f"{i}/{c}": rec for (i, c), (_, rec) in self.active.items()})

    # -- due dates -----------------------------------------------------------------------------
    def _refresh_uncertain(self, now_ms: int) -> None:
        out: dict[str, set[str]] = {}
        for (inst, ch), (_, rec) in self.active.items():
            if rec.get("uncertain_when_due") and now_ms >= int(rec["next_due_ms"]):
                out.setdefault(inst, set()).add(ch)
        self.uncertain = out

    def check_due(self, now_ms: int | None = None, mono_s: float | None = None) -> None:
        """``calibration_due`` ahead of the due date (once) and when overdue (then once a day).

        The due date is a calendar date, judged by the wall clock; the daily reminder counts days
        that passed (monotonic), so a clock step forward by days is one event per channel, not a
        reminder per day skipped, and a step back does not hold the reminders back."""
        now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        mono = mono_s if mono_s is not None else time.monotonic()
        with self._lock:
            self._refresh_uncertain(now)
            items = list(self.active.items())
        for key, (_, rec) in items:
            due = int(rec["next_due_ms"])
            state = "overdue" if now >= due else "due_soon" if now >= due - rec["warn_days"] * DAY_MS else "ok"
            last = self.due_state.get(key)
            if state == "ok" or (last and last[0] == state and (state != "overdue" or mono - last[1] < REMIND_S)):
                continue
            self.due_state[key] = (state, mono)
            when = (
                f"overdue since {_due_text(rec)}"
                if state == "overdue"
                else f"due {_due_text(rec)} (in {_span(due - now)})"
            )
            sev = Severity.ALARM if state == "overdue" else Severity.WARNING
            self.event(
                key[0],
                "calibration_due",
                f"{key[0]}/{key[1]}: calibration {when}",
                sev,
                {
                    "channel": key[1],
                    "due": rec["next_due"],
                    "overdue": state == "overdue",
                    "last_calibrated": rec["when"],
                    "by": rec["by"],
                    "record_id": rec.get("record_id"),
                },
            )

    def republish(self) -> None:
        """Publish every active record (retained) again, e.g. after start."""
        for (inst, ch), (_, rec) in list(self.active.items()):
            self.publish(inst, ch, rec)


def _correct_waveform(wf: Waveform, mine: Mapping[str, Coefficients]) -> Waveform:
    samples = np.array(wf.samples, dtype=np.float64 if wf.samples.dtype == np.float64 else np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    for i, axis in enumerate(wf.axes):
        if axis in mine:
            samples[:, i] = mine[axis].apply_array(samples[:, i])
    # raw counts no longer match the corrected samples: captures take the samples (float32)
    return dataclasses.replace(wf, samples=samples, raw=None)


def stage_c(ch: ChannelReading) -> float | None:
    """The channel's temperature at the stage the correction is applied: what the plugin publishes.

    A straight-line chip (MAX31855) reports a temperature the temperature plugin would convert
    with the NIST tables; the difference grows with temperature (0.5-3.5 degC at 150-400 degC,
    type K). Calibrating the chip's value would leave that difference in the published value, so a
    point pairs the reference with the NIST-converted value and the correction applies to it."""
    v = ch.temperature_c
    if v is None or not math.isfinite(v):
        return None
    if (
        ch.linearisation is Linearisation.LINEAR
        and ch.slope_uv_per_c
        and ch.cold_junction_c is not None
        and ch.sensor in TcType.__members__
    ):
        try:
            return its90.linear_chip_corrected_c(
                TcType(ch.sensor), v, ch.cold_junction_c, ch.slope_uv_per_c, refine=True
            )
        except its90.OutOfRangeError:
            return None
    return float(v)


def _corrected_channel(ch: ChannelReading, coeff: Coefficients, before: Coefficients | None) -> ChannelReading:
    """The channel corrected at its stage (``linearisation`` DONE: the plugin converts nothing more);
    after a change of calibration, ``calibration_step_c`` tells the trend logic it is a step."""
    v = stage_c(ch)
    if v is None:
        return ch
    value = coeff.apply(v)
    step = 0.0 if before is None else value - before.apply(v)
    return dataclasses.replace(ch, temperature_c=value, linearisation=Linearisation.DONE, calibration_step_c=step)
