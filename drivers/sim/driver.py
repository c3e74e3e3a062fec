"""The generic simulated driver: a small signal generator returning named values.

Profiles: ``sine``, ``ramp``, ``random_walk``, ``square``, ``constant``. Fault injection for tests
and demos: ``fail_reads`` (1-based read numbers that raise), ``read_delay_s`` (a slow device),
``junk_every`` (every n-th read returns what a broken driver might: the agent must catch it).
"""

from __future__ import annotations

import enum
import math
import random
import time
from typing import Annotated, Any

import msgspec
from edge_agent.drivers.contract import Capability, DriverSpec, DType, Options, Values, ValueSpec
from edge_agent.drivers.errors import CommError, DriverError


class Profile(enum.StrEnum):
    SINE = "sine"
    RAMP = "ramp"
    RANDOM_WALK = "random_walk"
    SQUARE = "square"
    CONSTANT = "constant"


class SimOptions(Options):
    profile: Profile = Profile.SINE
    channels: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    prefix: str = "ch"
    offset: float = 0.0
    amplitude: float = 1.0
    period_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    noise: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    seed: int = 0
    fail_reads: list[Annotated[int, msgspec.Meta(ge=1)]] = []
    fail_open: bool = False
    read_delay_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.0
    junk_every: Annotated[int, msgspec.Meta(ge=0)] = 0  # every n-th read returns junk (0: never)


# what a broken driver returns, in turn, on a junk read (in channel 0, plus an undeclared key)
JUNK: tuple[Any, ...] = ("twelve", math.nan, math.inf, -math.inf, [1.0, 2.0], 1e39, True, None)


class SimDriver:
    """Computes each channel from elapsed time; channel k is phase-shifted by k/channels."""

    def __init__(self, options: SimOptions) -> None:
        self.o = options
        self._rng = random.Random(options.seed)
        self._t0 = time.monotonic()
        self._reads = 0
        self._walk = [options.offset] * options.channels
        self.opened = False

    def open(self) -> None:
        if self.o.fail_open:
            raise CommError("sim: open failed (fail_open = true)")
        self.opened = True

    def _value(self, k: int, t: float) -> float:
        o = self.o
        phase = 2 * math.pi * (t / o.period_s + k / o.channels)
        if o.profile is Profile.SINE:
            v = o.offset + o.amplitude * math.sin(phase)
        elif o.profile is Profile.RAMP:
            v = o.offset + o.amplitude * ((t / o.period_s + k / o.channels) % 1.0)
        elif o.profile is Profile.SQUARE:
            v = o.offset + (o.amplitude if math.sin(phase) >= 0 else -o.amplitude)
        elif o.profile is Profile.RANDOM_WALK:
            self._walk[k] += self._rng.gauss(0.0, o.amplitude * 0.01)
            v = self._walk[k]
        else:
            v = o.offset
        return v + (self._rng.gauss(0.0, o.noise) if o.noise else 0.0)

    def read(self) -> Values:
        if not self.opened:
            raise DriverError("sim: read before open")
        self._reads += 1
        if self.o.read_delay_s:
            time.sleep(self.o.read_delay_s)
        if self._reads in self.o.fail_reads:
            raise CommError(f"sim: injected failure on read {self._reads}")
        t = time.monotonic() - self._t0
        values: dict[str, Any] = {f"{self.o.prefix}{k}": self._value(k, t) for k in range(self.o.channels)}
        if self.o.junk_every and self._reads % self.o.junk_every == 0:
            values[f"{self.o.prefix}0"] = JUNK[(self._reads // self.o.junk_every) % len(JUNK)]
            values["undeclared_junk"] = 1.0
        return Values(values)

    def close(self) -> None:
        self.opened = False


def declared(o: SimOptions) -> list[ValueSpec]:
    """One float per channel: ``{prefix}0`` ... ``{prefix}{channels-1}``."""
    return [
        ValueSpec(f"{o.prefix}{k}", DType.FLOAT32, description=f"simulated {o.profile} signal, channel {k}")
        for k in range(o.channels)
    ]


SPEC = DriverSpec(
    name="sim",
    factory=SimDriver,
    options=SimOptions,
    provides=frozenset({Capability.VALUES}),
    description="Signal generator (sine, ramp, random walk, square, constant) with fault injection",
    values=declared,
)
