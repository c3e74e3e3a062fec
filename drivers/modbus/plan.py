"""Request coalescing: group tags into the fewest reads that respect the protocol limits.

Tags are grouped per unit id, table and poll class, sorted by address, and packed greedily: a
request grows to take the next tag while it stays within ``max_registers`` (or ``max_bits``) and
the registers read but not needed between two tags stay within ``max_gap``. For contiguous
ranges on a line, extending each request as far as the limits allow is optimal (the greedy
request covers at least the tags of any other valid first request), so the count is the minimum
the limits allow. The plan is computed once when the driver is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edge_agent.drivers.modbus.tags import PollClass, Table, Tag

MAX_REGISTERS = 125  # protocol limit of function codes 3 and 4
MAX_BITS = 2000  # protocol limit of function codes 1 and 2


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-device packing limits (registers for register tables, bits for coils/inputs)."""

    max_registers: int = MAX_REGISTERS
    max_bits: int = MAX_BITS
    max_gap: int = 16
    max_gap_bits: int = 256

    def size(self, table: Table) -> int:
        return self.max_bits if table.is_bits else self.max_registers

    def gap(self, table: Table) -> int:
        return self.max_gap_bits if table.is_bits else self.max_gap


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read: ``count`` registers (or bits) of ``table`` from ``address`` on ``unit_id``."""

    unit_id: int
    table: Table
    address: int
    count: int
    poll: PollClass
    tags: tuple[Tag, ...]

    @property
    def end(self) -> int:
        return self.address + self.count - 1

    def unused(self) -> int:
        """Registers (or bits) read but covered by no tag."""
        used: set[int] = set()
        for t in self.tags:
            used.update(range(t.address, t.end + 1))
        return self.count - len(used)

    def describe(self) -> str:
        """One line for ``check-config --plan``."""
        return (
            f"unit {self.unit_id} {self.table} {self.address}-{self.end} "
            f"({len(self.tags)} tags, {self.unused()} gap) {self.poll}"
        )


def _pack(tags: Sequence[Tag], unit_id: int, table: Table, poll: PollClass, limits: Limits) -> list[ReadRequest]:
    size, gap = limits.size(table), limits.gap(table)
    out: list[ReadRequest] = []
    group: list[Tag] = []
    start = end = 0
    for tag in sorted(tags, key=lambda t: (t.address, t.end)):
        new_end = max(end, tag.end)
        if group and new_end - start + 1 <= size and tag.address - end - 1 <= gap:
            group.append(tag)
            end = new_end
            continue
        if group:
            out.append(ReadRequest(unit_id, table, start, end - start + 1, poll, tuple(group)))
        group, start, end = [tag], tag.address, tag.end
    if group:
        out.append(ReadRequest(unit_id, table, start, end - start + 1, poll, tuple(group)))
    return out


def build_plan(tags: Iterable[Tag], default_unit: int, limits: Limits) -> list[ReadRequest]:
    """Coalesce all tags into requests, ordered by unit, table, poll class and address."""
    groups: dict[tuple[int, Table, PollClass], list[Tag]] = {}
    for tag in tags:
        unit = default_unit if tag.unit_id is None else tag.unit_id
        groups.setdefault((unit, tag.table, tag.poll), []).append(tag)
    plan: list[ReadRequest] = []
    for (unit, table, poll), members in sorted(groups.items()):
        plan += _pack(members, unit, table, poll, limits)
    return plan


def split(request: ReadRequest, limits: Limits) -> tuple[ReadRequest, ReadRequest] | None:
    """Split a request's tags in two halves (to isolate an illegal address); None if one tag."""
    if len(request.tags) < 2:
        return None
    tags = sorted(request.tags, key=lambda t: (t.address, t.end))
    mid = len(tags) // 2
    halves = [_pack(part, request.unit_id, request.table, request.poll, limits) for part in (tags[:mid], tags[mid:])]
    a, b = halves[0][0], halves[1][0]  # a subset of a valid request always packs into one
    return a, b


def oversize(tags: Iterable[Tag], limits: Limits) -> list[str]:
    """Tags that cannot fit one request under the limits, as "name: problem" strings."""
    return [
        f"{t.name}: needs {t.count} registers, more than max_registers = {limits.max_registers}"
        for t in tags
        if not t.table.is_bits and t.count > limits.max_registers
    ]
