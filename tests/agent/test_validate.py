"""agent/config/validation.py reads msgspec's error texts: the exact shapes it relies on are checked here,
so a msgspec release that words them differently fails loudly instead of making messages vague."""

from __future__ import annotations

from importlib.metadata import requires, version
from typing import Annotated, Literal

import msgspec
import pytest
from edge_agent.agent.config import validation as v
from edge_agent.drivers.contract import HEX


class Shapes(msgspec.Struct, forbid_unknown_fields=True):
    n: Annotated[int, msgspec.Meta(ge=0x03, le=0x77, extra=HEX)] = 0x53
    f: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    lit: Literal[7, 8] = 8
    items: list[Annotated[int, msgspec.Meta(ge=1)]] = []
    flag: bool = True


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"n": 200}, "Expected `int` <= 119 - at `$.n`"),
        ({"f": 0}, "Expected `float` > 0.0 - at `$.f`"),
        ({"lit": 3}, "Invalid enum value 3 - at `$.lit`"),
        ({"items": [0]}, "Expected `int` >= 1 - at `$.items[0]`"),
        ({"flag": "false"}, "Expected `bool`, got `str` - at `$.flag`"),
        ({"f": "2"}, "Expected `float`, got `str` - at `$.f`"),
    ],
)
def test_msgspec_messages_have_the_shapes_validate_reads(data: dict[str, object], text: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(data, Shapes, strict=True)
    assert str(info.value) == text, f"msgspec {version('msgspec')} words its errors differently: update validate.py"
    message = text.partition(" - at `")[0]
    assert v.CONSTRAINT.match(message) or v.WRONG_TYPE.match(message) or message.startswith(v.ENUM)


def test_messages_built_from_them() -> None:
    errors: list[str] = []
    v.validate({"n": 0x78, "f": 0, "lit": 3, "items": [0], "flag": "false"}, Shapes, "opt", errors)
    assert errors == [
        "opt.n: expected an integer from 0x03 to 0x77, got 0x78",
        "opt.f: expected a number > 0, got 0",
        "opt.lit: invalid value 3 (expected one of: 7, 8)",
        "opt.items[0]: expected an integer >= 1, got 0",
        'opt.flag: expected true or false, got "false" (a string: write false without quotes)',
    ]


def test_msgspec_is_pinned_to_the_release_line_these_tests_cover() -> None:
    pins = [r for r in requires("edge-agent") or [] if r.startswith("msgspec")]
    assert pins == ["msgspec<0.24,>=0.23"] or pins == ["msgspec>=0.23,<0.24"], pins
    assert version("msgspec").startswith("0.23."), "msgspec outside the pinned line: re-check the shapes above"
