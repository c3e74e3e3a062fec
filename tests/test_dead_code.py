"""No dead code: every function, method and class in agent/, drivers/ and plugins/ is used
somewhere (code, tests or benchmarks), so nothing is left that looks meant but does nothing."""

from __future__ import annotations

import ast
import re

from support import ROOT

# Called by name from outside our code: library callbacks, interfaces copied from a library.
EXTERNAL = {
    "device_ids",  # pymodbus' datastore interface (drivers/modbus/simulator.py)
    "read_word_data",  # smbus2's interface, offered by the fake I2C bus (drivers/buses/emulated.py)
    "write_i2c_block_data",
    "do_GET",  # http.server's request handler interface (agent/ops/panel/server.py)
    "do_POST",
    "log_message",
}


def unused_names() -> list[str]:
    code = [p for d in ("agent", "drivers", "plugins") for p in (ROOT / d).rglob("*.py")]
    users = [*code, *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    text = "\n".join(p.read_text() for p in users)
    counts: dict[str, int] = {}
    for word in re.findall(r"\b\w+\b", text):
        counts[word] = counts.get(word, 0) + 1
    out = []
    for path in code:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = node.name
                called_by_pytest = name.startswith("test_")  # the conformance kit's checks
                if name.startswith("__") or name in EXTERNAL or called_by_pytest:
                    continue
                if counts.get(name, 0) <= 1:
                    out.append(f"{path.relative_to(ROOT)}: {name}")
    return out


def test_every_definition_is_used() -> None:
    assert unused_names() == []
