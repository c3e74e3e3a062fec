"""The Modbus tag map: what to read, where, and how to turn registers into engineering values.

Tags come from TOML (``driver.tags``) or from a CSV file (``driver.tags_csv``) whose header names
the same fields. Both are validated into :class:`Tag`; CSV errors name the row and the column.
"""

from __future__ import annotations

import csv
import difflib
import enum
import io
import re
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import msgspec
from edge_agent.drivers.errors import DriverError


class Table(enum.StrEnum):
    """The four Modbus data tables."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    INPUT_REGISTER = "input_register"
    HOLDING_REGISTER = "holding_register"

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)


class DataType(enum.StrEnum):
    """How a tag's registers (or bit) are interpreted."""

    BOOL = "bool"  # a coil or discrete input
    BIT = "bit"  # bit ``bit`` (0 = LSB) of one register
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"  # ``length`` registers, 2 characters each

    @property
    def is_integer(self) -> bool:
        return self.value.startswith(("int", "uint"))


# Registers per fixed-size type, and the struct code of its big-endian form.
REGISTERS: dict[DataType, int] = {
    DataType.BOOL: 1,
    DataType.BIT: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT32: 2,
    DataType.FLOAT64: 4,
}
STRUCT_CODE: dict[DataType, str] = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}
INT_RANGE: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
    DataType.BOOL: (0, 1),
    DataType.BIT: (0, 1),
}


class Order(enum.StrEnum):
    """Byte order within a register, or register order within a multi-register value."""

    BIG = "big"  # most significant first (Modbus standard)
    LITTLE = "little"


class PollClass(enum.StrEnum):
    FAST = "fast"  # every poll
    SLOW = "slow"  # every ``slow_every`` polls


Address = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class Tag(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One named value in a PLC (a row of the tag map)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    table: Table = Table.HOLDING_REGISTER
    address: Address
    type: DataType = DataType.UINT16
    bit: Annotated[int, msgspec.Meta(ge=0, le=15)] | None = None  # for type = "bit"
    length: Annotated[int, msgspec.Meta(ge=1, le=125)] | None = None  # registers, for strings
    byte_order: Order = Order.BIG
    word_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    poll: PollClass = PollClass.FAST
    unit_id: Annotated[int, msgspec.Meta(ge=0, le=255)] | None = None  # default: the device's
    writable: bool = False
    min: float | None = None  # engineering range: write checks and the span of deadband_percent
    max: float | None = None
    deadband: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # absolute, in ``unit``
    deadband_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0  # of max - min

    @property
    def count(self) -> int:
        """Registers (or bits) this tag occupies."""
        if self.type is DataType.STRING:
            return self.length or 1
        return REGISTERS[self.type]

    @property
    def end(self) -> int:
        """Last address occupied (inclusive)."""
        return self.address + self.count - 1


def tag_problems(tag: Tag) -> list[str]:
    """Cross-field problems of one tag, as "field: problem" strings."""
    out: list[str] = []
    if tag.table.is_bits and tag.type is not DataType.BOOL:
        out.append(f"type: a {tag.table} holds single bits, use type = 'bool' (got {tag.type})")
    if not tag.table.is_bits and tag.type is DataType.BOOL:
        out.append("type: 'bool' is for coils and discrete inputs; use 'bit' with bit = n for registers")
    if (tag.type is DataType.BIT) != (tag.bit is not None):
        out.append("bit: required for type 'bit' and only for it")
    if (tag.type is DataType.STRING) != (tag.length is not None):
        out.append("length: required for type 'string' (registers) and only for it")
    if tag.end > 65535:
        out.append(f"address: tag ends at {tag.end}, beyond 65535")
    if tag.writable and tag.table in (Table.DISCRETE_INPUT, Table.INPUT_REGISTER):
        out.append(f"writable: a {tag.table} is read-only")
    if tag.min is not None and tag.max is not None and tag.min >= tag.max:
        out.append("min: must be below max")
    if tag.deadband_percent and (tag.min is None or tag.max is None):
        out.append("deadband_percent: needs min and max (the span)")
    if tag.scale == 0:
        out.append("scale: must not be 0")
    return out


def check_tags(tags: Iterable[Tag], where: str = "tags") -> list[str]:
    """Problems of a whole tag map: per-tag checks and duplicate names, with their index."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, tag in enumerate(tags):
        out += [f"{where}[{i}].{p}" for p in tag_problems(tag)]
        if tag.name in seen:
            out.append(f"{where}[{i}].name: duplicate of {where}[{seen[tag.name]}] ({tag.name!r})")
        seen.setdefault(tag.name, i)
    return out


class TagMapError(DriverError, ValueError):
    """A tag map (CSV or TOML) is invalid; the message lists every problem with its location."""


_QUOTED = re.compile(r"'[^']*'")  # msgspec quotes values in single quotes, types in backticks
_FLOAT_FIELDS = {"scale", "offset", "min", "max", "deadband", "deadband_percent"}
_INT_FIELDS = {"address", "bit", "length", "unit_id"}
_BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _cell(column: str, text: str) -> Any:
    """Convert one CSV cell to the type its column expects; raise ValueError with the reason.
    Reasons never quote the cell: a tag map's errors must not carry a file's content."""
    text = text.strip()
    try:
        if column in _INT_FIELDS:
            return int(text, 0)
        if column in _FLOAT_FIELDS:
            return float(text)
    except ValueError:
        raise ValueError("expected an integer" if column in _INT_FIELDS else "expected a number") from None
    if column == "writable":
        if text.lower() not in _BOOL_WORDS:
            raise ValueError("expected true/false (or yes/no, 1/0)")
        return _BOOL_WORDS[text.lower()]
    return text


def _row(fields: dict[str, str], row_no: int) -> tuple[Tag | None, list[str]]:
    """Parse one CSV row into a Tag, or return its problems as "row N, column C: ..." strings."""
    data: dict[str, Any] = {}
    errors: list[str] = []
    for column, text in fields.items():
        if text is None or text.strip() == "":
            continue
        try:
            data[column] = _cell(column, text)
        except ValueError as exc:
            errors.append(f"row {row_no}, column {column}: {exc}")
    if errors:
        return None, errors
    try:
        tag = msgspec.convert(data, Tag)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        column = msg.split("`$.", 1)[1].split("`", 1)[0] if "`$." in msg else "?"
        return None, [f"row {row_no}, column {column}: {_cell_problem(column, msg.split(' - at', 1)[0])}"]
    return tag, [f"row {row_no}, column {p}" for p in tag_problems(tag)]


def _cell_problem(column: str, message: str) -> str:
    """A validation message that does not quote the cell (its value came from the file): an
    enum column lists its choices instead."""
    choices = typing.get_type_hints(Tag).get(column)
    if isinstance(choices, type) and issubclass(choices, enum.Enum) and "enum" in message:
        return f"not one of {', '.join(str(m.value) for m in choices)}"
    return _QUOTED.sub("(the cell's value)", message)


def _header_problem(columns: list[str], known: set[str]) -> str:
    """What is wrong with row 1, by column number: the unknown names themselves are never quoted (a
    file that is not a tag map, /etc/passwd say, must not see its first line in an error), only the
    known field a typo is closest to."""
    if not columns:
        return f"row 1: no header (known columns: {sorted(known)})"
    problems = []
    for i, column in enumerate(columns, start=1):
        if column not in known:
            close = difflib.get_close_matches(column.strip().lower(), sorted(known), n=1)
            problems.append(f"column {i} is not a tag field" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"row 1: {'; '.join(problems[:10])}; known: {sorted(known)}"


def parse_csv(text: str, source: str = "tags.csv") -> list[Tag]:
    """Parse a tag CSV (header row = Tag field names); raise TagMapError listing every problem."""
    reader = csv.DictReader(io.StringIO(text))
    known = set(Tag.__struct_fields__)
    columns = list(reader.fieldnames or [])
    if not columns or any(c not in known for c in columns):
        raise TagMapError(f"{source}: {_header_problem(columns, known)}")
    tags: list[Tag] = []
    errors: list[str] = []
    names: dict[str, int] = {}
    for row_no, fields in enumerate(reader, start=2):  # row 1 is the header
        if not any((v or "").strip() for v in fields.values()):
            continue
        tag, problems = _row(fields, row_no)
        errors += problems
        if tag is not None:
            if tag.name in names:
                errors.append(f"row {row_no}, column name: duplicate of row {names[tag.name]}")
            names.setdefault(tag.name, row_no)
            tags.append(tag)
    if errors:
        raise TagMapError(f"{source}: " + "; ".join(errors))
    return tags


def load_csv(path: str | Path) -> list[Tag]:
    """Read and parse a tag CSV file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TagMapError(f"{p}: cannot read tag file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:  # the decoder's message quotes the bad bytes
        raise TagMapError(f"{p}: not a UTF-8 text file (byte {exc.start})") from None
    return parse_csv(text, str(p))


CSV_COLUMNS = (
    "name",
    "table",
    "address",
    "type",
    "bit",
    "length",
    "byte_order",
    "word_order",
    "scale",
    "offset",
    "unit",
    "poll",
    "unit_id",
    "writable",
    "min",
    "max",
    "deadband",
    "deadband_percent",
)


def to_csv(tags: Iterable[Tag]) -> str:
    """Write tags as CSV (the inverse of parse_csv), leaving default cells empty."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    default = {
        "byte_order": "big",
        "word_order": "big",
        "scale": 1.0,
        "offset": 0.0,
        "poll": "fast",
        "writable": False,
        "deadband": 0.0,
        "deadband_percent": 0.0,
        "unit": "",
    }
    for t in tags:
        row = []
        for c in CSV_COLUMNS:
            v = getattr(t, c)
            v = v.value if isinstance(v, enum.Enum) else v
            row.append(
                "" if v is None or default.get(c, object()) == v else str(v).lower() if isinstance(v, bool) else str(v)
            )
        w.writerow(row)
    return out.getvalue()
