"""What the ``vibration`` plugin emits (declared values) and which options name a value."""

from __future__ import annotations

from collections.abc import Sequence

from edge_agent.drivers.contract import DType, ValueRef, ValueSpec
from edge_agent.plugins.vibration.bearing import Tone
from edge_agent.plugins.vibration.diagnosis import Fault
from edge_agent.plugins.vibration.options import SpeedSource, VibrationOptions

F32 = DType.FLOAT32
INDICATED = ("bpfo", "bpfi", "bsf")  # tones with an N-of-M fault indicator (FTF is reported only)


def _axis(axis: str, o: VibrationOptions, speed: bool) -> list[ValueSpec]:
    out = [
        ValueSpec(f"{axis}.rms_g", F32, "g", "RMS acceleration, DC removed"),
        ValueSpec(f"{axis}.peak_g", F32, "g", "max absolute acceleration, DC removed"),
        ValueSpec(f"{axis}.p2p_g", F32, "g", "max - min"),
        ValueSpec(f"{axis}.crest", F32, "", "peak / RMS"),
        ValueSpec(f"{axis}.kurtosis", F32, "", "Pearson kurtosis (Gaussian 3)"),
        ValueSpec(f"{axis}.skewness", F32, "", "third standardised moment"),
        ValueSpec(f"{axis}.velocity_rms_mm_s", F32, "mm/s", "velocity RMS in velocity_band_hz"),
    ]
    if o.peaks:
        out.append(ValueSpec(f"{axis}.peaks_hz", F32, "Hz", "largest spectral peaks, largest first", length=o.peaks))
        out.append(ValueSpec(f"{axis}.peaks_g", F32, "g", "their amplitudes (peak)", length=o.peaks))
    if o.bands_hz:
        out.append(ValueSpec(f"{axis}.bands_g", F32, "g", "RMS per bands_hz entry", length=len(o.bands_hz)))
    if speed:
        out += [ValueSpec(f"{axis}.{h}x_g", F32, "g", f"amplitude at {h} x running speed (peak)") for h in (1, 2, 3)]
    return out


def declared(o: VibrationOptions, driver: Sequence[ValueSpec]) -> list[ValueSpec]:
    """Per-axis features (axes: ``axes``, else the driver's), the ISO zone, speed and bearing tones."""
    axes = o.axes or [v.key for v in driver] or ["*"]
    speed = o.speed_source is not SpeedSource.NONE
    out = [v for axis in axes for v in _axis(axis, o, speed)]
    out += [
        ValueSpec("velocity_rms_mm_s", F32, "mm/s", "largest axis velocity RMS (null after a driver error)"),
        ValueSpec("iso_zone", DType.STR, "", "ISO 20816-3 (= 10816-3) zone A..D"),
    ]
    if speed:
        out.append(ValueSpec("rpm", F32, "rpm", "running speed used (absent when unknown)"))
        if o.bearing is not None:
            for tone in Tone:
                t = tone.value
                out += [
                    ValueSpec(f"bearing.{t}.hz", F32, "Hz", f"{t.upper()} frequency at this speed"),
                    ValueSpec(f"bearing.{t}.amp_g", F32, "g", "envelope amplitude (peak), best axis"),
                    ValueSpec(f"bearing.{t}.ratio_db", F32, "dB", "peak over local floor, best axis"),
                ]
                if t in INDICATED:
                    out.append(ValueSpec(f"bearing.{t}.fault", DType.BOOL, "", "N-of-M fault indicator"))
    if speed and o.diagnosis:
        out += _diagnosis()
    out += [
        ValueSpec("lost_samples", DType.INT, "", "samples lost (overrun message only)"),
        ValueSpec("overruns", DType.INT, "", "overruns since start (overrun message only)"),
    ]
    return out


def _diagnosis() -> list[ValueSpec]:
    out = [ValueSpec("diagnosis.faults", DType.STR, "", "active faults, most confident first, comma-separated")]
    for fault in Fault:
        f = fault.value
        out += [
            ValueSpec(f"diagnosis.{f}.confidence", F32, "", f"{f}: this window's pattern match x severity, 0..1"),
            ValueSpec(f"diagnosis.{f}.active", DType.BOOL, "", f"{f}: N-of-M indicator (machine_fault event)"),
            ValueSpec(f"diagnosis.{f}.evidence", DType.STR, "", f"{f}: orders, velocities and axes behind it"),
        ]
    return out


def references(o: VibrationOptions) -> list[ValueRef]:
    """Axes (the driver's), alarm features (this instance's values), the linked speed (another's)."""
    refs = [ValueRef(f"axes[{i}]", axis, driver=True) for i, axis in enumerate(o.axes or ())]
    refs += [ValueRef(f"alarms[{i}].feature", a.feature, numeric=True) for i, a in enumerate(o.alarms)]
    if o.speed_source is SpeedSource.LINK and o.speed_instance:
        refs.append(ValueRef("speed_key", o.speed_key, o.speed_instance, "speed_instance", numeric=True))
    return refs
