"""Import every edge-agent module and every bus library on the target (make smoke-armhf).

Prints one line per library with its version; the Pi-only libraries are expected to refuse off a Pi
(RPi.GPIO raises RuntimeError) and that is reported, not failed. Exits 1 when a module of ours, or a
dependency, does not import, or a plugin or driver is broken.
"""

from __future__ import annotations

import importlib
import pkgutil
import platform
import sys
from importlib import metadata

failures: list[str] = []
print(f"python {platform.python_version()} on {platform.machine()}, {sys.maxsize.bit_length() + 1}-bit")
for dist in (
    "numpy",
    "msgpack",
    "msgspec",
    "paho-mqtt",
    "pymodbus",
    "pyserial",
    "gpiozero",
    "spidev",
    "smbus2",
    "lgpio",
):
    try:
        print(f"{dist} {metadata.version(dist)}")
    except metadata.PackageNotFoundError:
        failures.append(f"{dist} is not installed")

for mod in ("numpy", "msgpack", "msgspec", "paho.mqtt.client", "pymodbus", "serial", "gpiozero", "spidev", "smbus2"):
    try:
        importlib.import_module(mod)
    except Exception as exc:
        failures.append(f"import {mod}: {type(exc).__name__}: {exc}")
# Pi-only libraries: lgpio imports anywhere (it opens a chip only when asked); RPi.GPIO refuses
# off a Pi by design.
for mod in ("lgpio", "RPi.GPIO"):
    try:
        importlib.import_module(mod)
        print(f"import {mod}: ok")
    except Exception as exc:
        print(f"import {mod}: refused off a Pi ({type(exc).__name__}: {exc})")

import edge_agent  # noqa: E402  (after the dependency checks: they say what is missing first)

count = 0
for info in pkgutil.walk_packages(edge_agent.__path__, "edge_agent."):
    if info.name.endswith(".__main__"):  # runs the CLI
        continue
    try:
        importlib.import_module(info.name)
        count += 1
    except Exception as exc:
        failures.append(f"import {info.name}: {type(exc).__name__}: {exc}")
print(f"edge_agent modules imported: {count}")

from edge_agent.agent.config.registry import load_registry  # noqa: E402

reg = load_registry()
reg.load_all()
print(f"plugins: {', '.join(sorted(reg.plugins))}")
print(f"drivers: {', '.join(sorted(reg.drivers))}")
failures += [f"{kind} {name} broken: {why}" for (kind, name), why in reg.broken.items()]
for f in failures:
    print(f"FAIL {f}")
sys.exit(1 if failures else 0)
