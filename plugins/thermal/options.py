"""Options of the ``thermal`` plugin (``[instances.options]``): regions, severity classes, alarms."""

from __future__ import annotations

from typing import Annotated

import msgspec
from edge_agent.plugins.common.alarms import AlarmConfig
from edge_agent.plugins.contract import Options

ROWS, COLS = 24, 32  # the MLX90640; other arrays: the frame's own shape is checked at run time
AMBIENT = "ambient"


class SeverityClass(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A temperature-rise class: applies from ``min_delta_c`` up to the next class."""

    priority: Annotated[int, msgspec.Meta(ge=1, le=9)]  # 1 = most urgent (NETA's numbering)
    name: str
    min_delta_c: float
    action: str = ""


# NETA MTS (2019) table 100.18, "Thermographic survey suggested actions based on temperature rise".
# Its bands are whole degrees (O/S 1-3, 4-15, >15; O/A 1-10, 11-20, 21-40, >40 degC); a measured
# rise between two bands (15.5 over similar) takes the lower class.
NETA_SIMILAR: tuple[SeverityClass, ...] = (
    SeverityClass(priority=4, name="possible deficiency", min_delta_c=1.0, action="warrants investigation"),
    SeverityClass(priority=3, name="probable deficiency", min_delta_c=4.0, action="repair as time permits"),
    SeverityClass(priority=1, name="major discrepancy", min_delta_c=16.0, action="repair immediately"),
)
NETA_AMBIENT: tuple[SeverityClass, ...] = (
    SeverityClass(priority=4, name="possible deficiency", min_delta_c=1.0, action="warrants investigation"),
    SeverityClass(priority=3, name="probable deficiency", min_delta_c=11.0, action="repair as time permits"),
    SeverityClass(priority=2, name="deficiency", min_delta_c=21.0, action="monitor until corrective measures"),
    SeverityClass(priority=1, name="major discrepancy", min_delta_c=41.0, action="repair immediately"),
)


class Region(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A named region of interest: a rectangle ``[column, row, width, height]`` or the whole frame."""

    name: str
    rect: tuple[int, int, int, int] | None = None  # None: the whole frame
    emissivity: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.95
    reference: str = AMBIENT  # another region's name (O/S), or "ambient" (O/A)
    classes: list[SeverityClass] | None = None  # default: NETA's for the basis


class ThermalOptions(Options):
    regions: list[Region] = []  # default: one region "frame" (the whole frame)
    ambient_c: float | None = None  # default: the reflected temperature the driver used (Ta - 8)
    reflected_c: float | None = None  # default: the driver's
    severity_confirm: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3  # frames at a new class to change it
    rate_window_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 300.0  # least-squares trend window
    rate_min_points: Annotated[int, msgspec.Meta(ge=2)] = 5
    alarms: list[AlarmConfig] = []  # on any region value: "motor_de.max_c", "terminal.delta_t_c"
    png_scale: Annotated[int, msgspec.Meta(ge=1, le=30)] = 10  # pixels per sensor pixel in the PNG

    def all_regions(self) -> list[Region]:
        """The configured regions, or the whole frame."""
        return list(self.regions) or [Region(name="frame")]


def _rect_problem(i: int, r: Region) -> list[str]:
    if r.rect is None:
        return []
    c, row, w, h = r.rect
    if w < 1 or h < 1 or c < 0 or row < 0 or c + w > COLS or row + h > ROWS:
        return [f"regions[{i}].rect: [column, row, width, height] {list(r.rect)} is not inside the 32 x 24 frame"]
    return []


def check_options(o: ThermalOptions, driver_type: str | None) -> list[str]:
    """Names unique and not "ambient", rectangles inside the frame, references known, classes increasing."""
    errs: list[str] = []
    names = [r.name for r in o.all_regions()]
    for i, r in enumerate(o.all_regions()):
        if not r.name or "." in r.name or r.name == AMBIENT or names.count(r.name) > 1:
            errs.append(f"regions[{i}].name: {r.name!r} must be unique, non-empty, without '.', not 'ambient'")
        errs += _rect_problem(i, r)
        if r.reference != AMBIENT and (r.reference not in names or r.reference == r.name):
            errs.append(f"regions[{i}].reference: {r.reference!r} is not another region (or 'ambient')")
        lows = [c.min_delta_c for c in r.classes or ()]
        if lows != sorted(set(lows)):
            errs.append(f"regions[{i}].classes: min_delta_c must increase, got {lows}")
    return errs
