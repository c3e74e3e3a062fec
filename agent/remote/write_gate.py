"""The one gate every tag write passes, whatever asked for it (``cmd/write`` or a Sparkplug DCMD).

Two rules, checked before the plugin and its driver see the write (they keep their own checks:
``allow_writes``, ``writable``, ``min``/``max``, the raw type's range):

- a value that is not finite (NaN, +-Infinity) is never written, for any tag type: NaN passes
  every ``min``/``max`` comparison, so a range check alone lets it through;
- whether an instance may write, and its limits, come only from the local file. An instance the
  file does not define, or whose pushed table changes what decides a write (its plugin, its
  ``driver`` table: device address, tag map, ``writable``, limits; its ``options.allow_writes``),
  may write only when the file names it in ``[remote] allow_pushed_writes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

WRITE_COMMANDS = frozenset({"write"})


class WriteRefused(ValueError):
    """A write the gate refuses; the message says why and what would allow it."""


def check_finite(value: Any, where: str) -> None:
    """Refuse NaN and infinities (also inside a list of values)."""
    values = value if isinstance(value, list | tuple) else [value]
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise WriteRefused(f"{where}: {v!r} is not a finite number (NaN and infinities are never written)")


def _write_relevant(table: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """The parts of an instance table that decide what a write may do and where it goes."""
    options = table.get("options")
    allow = options.get("allow_writes", False) if isinstance(options, Mapping) else False
    return table.get("plugin"), table.get("driver"), allow


def check_authority(
    instance: str,
    *,
    file_tables: Mapping[str, Mapping[str, Any]],
    pushed_tables: Mapping[str, Mapping[str, Any]],
    allow_pushed_writes: list[str],
) -> None:
    """Refuse a write to an instance whose write permission or limits come from a push."""
    pushed = pushed_tables.get(instance)
    if pushed is None or instance in allow_pushed_writes:
        return  # the file's own table (or the file lets pushes decide for this instance)
    allow = '[remote] allow_pushed_writes = ["' + instance + '"] in the local file lets pushes decide'
    file_table = file_tables.get(instance)
    if file_table is None:
        raise WriteRefused(f"instance {instance!r} was pushed, and pushed instances may not write ({allow})")
    if _write_relevant(pushed) != _write_relevant(file_table):
        raise WriteRefused(
            f"instance {instance!r}: its pushed config changes the plugin, the driver (address, tags, limits) "
            f"or allow_writes of the local file's; writes follow the local file only ({allow})"
        )


__all__ = ["WRITE_COMMANDS", "WriteRefused", "check_authority", "check_finite"]
