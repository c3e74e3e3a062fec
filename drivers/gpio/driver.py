"""GPIO through gpiozero pin factories: debounced inputs, edge counters, tachometers, outputs.

Pins are used through gpiozero's pin API (``factory.pin(n)``, ``when_changed``), so the same
code runs on lgpio, RPi.GPIO, native or the mock factory. Debouncing is ours (a change counts
once the level has been stable for ``debounce_s``), because not every factory debounces and the
mock one does not. Backends: ``hw`` (the factory named by ``pin_factory``, else
``GPIOZERO_PIN_FACTORY``, else the first of lgpio, rpigpio, native that loads), ``mock``
(gpiozero's MockFactory, pins driven by tests) and ``sim`` (MockFactory, each input with
``sim_hz`` > 0 driven as a square wave: the edges due are delivered, with their own times, at
each read).
"""

from __future__ import annotations

import enum
import os
import threading
from collections import deque
from typing import Annotated, Any, Literal

import msgspec
from edge_agent.drivers.contract import Capability, DriverSpec, DType, Options, Scalar, Values, ValueSpec, on_hardware
from edge_agent.drivers.errors import DeviceNotFound, DriverError


class Kind(enum.StrEnum):
    INPUT = "input"  # the debounced state: true when active
    COUNTER = "counter"  # activations counted since start
    TACHOMETER = "tachometer"  # pulses -> rpm


class Pull(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    NONE = "none"  # floating: an external resistor sets the idle level


class Backend(enum.StrEnum):
    HW = "hw"
    MOCK = "mock"
    SIM = "sim"


Pin = Annotated[int, msgspec.Meta(ge=0, le=53)]  # BCM numbering
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


class InputConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: Name
    pin: Pin
    kind: Kind = Kind.INPUT
    pull: Pull = Pull.UP
    active_state: Literal["high", "low"] | None = None  # default: low with a pull-up, else high
    debounce_s: Annotated[float, msgspec.Meta(ge=0, le=10)] | None = None  # default 0.01, tachometer 0
    pulses_per_rev: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 2.0  # no pulse for this long: 0 rpm
    sim_hz: Annotated[float, msgspec.Meta(ge=0, le=1000)] = 0.0  # backend sim: pulse frequency

    @property
    def active_high(self) -> bool:
        if self.active_state is not None:
            return self.active_state == "high"
        return self.pull is not Pull.UP

    @property
    def debounce(self) -> float:
        if self.debounce_s is not None:
            return self.debounce_s
        return 0.0 if self.kind is Kind.TACHOMETER else 0.01


class OutputConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: Name
    pin: Pin
    active_high: bool = True
    initial: bool = False  # off unless told otherwise


class GpioOptions(Options):
    backend: Backend = Backend.HW
    pin_factory: Literal["lgpio", "rpigpio", "native", "pigpio", "mock"] | None = None
    inputs: list[InputConfig] = []
    outputs: list[OutputConfig] = []  # none by default: nothing is driven


class Debouncer:
    """Stable-state debounce: a new level counts once it held for ``debounce_s``."""

    __slots__ = ("_pending", "debounce_s", "level")

    def __init__(self, debounce_s: float, level: bool) -> None:
        self.debounce_s = debounce_s
        self.level = level
        self._pending: tuple[float, bool] | None = None

    def settle(self, now_s: float) -> list[tuple[float, bool]]:
        """Confirm a pending change that has been stable until ``now_s``; return [(t, level)]."""
        p = self._pending
        if p is None or now_s - p[0] < self.debounce_s:
            return []
        self._pending = None
        self.level = p[1]
        return [p]

    def edge(self, t_s: float, level: bool) -> list[tuple[float, bool]]:
        """Feed a raw edge; return the confirmed transitions (stamped with their edge time)."""
        done = self.settle(t_s)
        if level == self.level:
            self._pending = None  # a glitch that came back before the debounce time
        else:
            self._pending = (t_s, level)
            if self.debounce_s == 0:
                done += self.settle(t_s)
        return done


class Tachometer:
    """Pulse times -> rpm: mean frequency over the pulses since the last read, 0 after a timeout."""

    def __init__(self, pulses_per_rev: float, timeout_s: float) -> None:
        self.ppr, self.timeout_s = pulses_per_rev, timeout_s
        self._pulses: deque[float] = deque(maxlen=100_000)
        self._last_before: float | None = None
        self._rpm = 0.0

    def pulse(self, t_s: float) -> None:
        self._pulses.append(t_s)

    def rpm(self, now_s: float) -> float:
        """Revolutions per minute at ``now_s``."""
        times = ([self._last_before] if self._last_before is not None else []) + list(self._pulses)
        self._pulses.clear()
        if not times or now_s - times[-1] > self.timeout_s:
            self._rpm = 0.0
        elif len(times) >= 2 and times[-1] > times[0]:
            self._rpm = 60.0 * (len(times) - 1) / (times[-1] - times[0]) / self.ppr
        else:  # no new pulse yet: the speed is at most one revolution-fraction per elapsed time
            self._rpm = min(self._rpm, 60.0 / (now_s - times[-1]) / self.ppr) if now_s > times[-1] else self._rpm
        if times:
            self._last_before = times[-1]
        return self._rpm


class Channel:
    """One input pin: raw edges in (from the factory's thread), debounced state and counts out."""

    def __init__(self, cfg: InputConfig, raw_level: bool) -> None:
        self.cfg = cfg
        self.lock = threading.Lock()
        self.debouncer = Debouncer(cfg.debounce, self._active(raw_level))
        self.count = 0
        self.tacho = Tachometer(cfg.pulses_per_rev, cfg.timeout_s) if cfg.kind is Kind.TACHOMETER else None

    def _active(self, raw_level: bool) -> bool:
        return raw_level if self.cfg.active_high else not raw_level

    def _apply(self, transitions: list[tuple[float, bool]]) -> None:
        for t, active in transitions:
            if active:
                self.count += 1
                if self.tacho is not None:
                    self.tacho.pulse(t)

    def edge(self, t_s: float, raw_level: bool) -> None:
        """Called from the pin factory's callback thread."""
        with self.lock:
            self._apply(self.debouncer.edge(t_s, self._active(raw_level)))

    def value(self, now_s: float) -> Scalar:
        """The channel's reading at ``now_s``: state, count or rpm."""
        with self.lock:
            self._apply(self.debouncer.settle(now_s))
            if self.cfg.kind is Kind.COUNTER:
                return self.count
            if self.tacho is not None:
                return self.tacho.rpm(now_s)
            return self.debouncer.level


def make_factory(backend: Backend, name: str | None) -> Any:
    """The pin factory for a backend: mock for sim/mock, else by name, env, or the first that loads."""
    from importlib.metadata import entry_points

    if backend is not Backend.HW:
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    group = {ep.name: ep for ep in entry_points(group="gpiozero_pin_factories")}
    wanted = name or os.environ.get("GPIOZERO_PIN_FACTORY")
    candidates = [wanted] if wanted else ["lgpio", "rpigpio", "native"]
    errors: list[str] = []
    for candidate in candidates:
        if candidate not in group:
            errors.append(f"{candidate}: not installed")
            continue
        try:
            return group[candidate].load()()
        except Exception as exc:  # each factory fails differently off a Pi
            errors.append(f"{candidate}: {exc}")
    raise DeviceNotFound("gpio: no usable pin factory (" + "; ".join(errors) + ")")


class PulseGenerator:
    """Backend sim: drives mock input pins as square waves at their ``sim_hz``.

    No thread: every read first delivers the edges that fell due since the last one, each with its
    own due time as its ticks (as the kernel timestamps GPIO line events), so the driver computes
    exactly what it would from edges delivered one by one. A pulse thread woke at every edge: 49.5
    wake-ups a second were 0.3-0.7 % of a core in the agent, the edges themselves 0.007 %
    (bench/gpio_edges.py), so the simulator, not the agent, dominated the GPIO figures."""

    def __init__(self, pins: list[tuple[Any, InputConfig]], clock: Any = None) -> None:
        import time

        self.pins = [(p, c) for p, c in pins if c.sim_hz > 0]
        self.clock = clock or time.monotonic
        self.t0 = self.clock()
        self.toggles = [0] * len(self.pins)

    def catch_up(self) -> None:
        """Deliver every edge due by now, oldest first."""
        now = self.clock() - self.t0
        for i, (pin, cfg) in enumerate(self.pins):
            half = 0.5 / cfg.sim_hz
            while (self.toggles[i] + 1) * half <= now:
                self.toggles[i] += 1
                active = self.toggles[i] % 2 == 1
                _edge(pin, active == cfg.active_high, self.t0 + self.toggles[i] * half)
                if len(getattr(pin, "states", ())) > 64:
                    pin.clear_states()  # mock pins keep every change: ~18 MB/h at 50 Hz otherwise


def _edge(pin: Any, high: bool, ticks: float) -> None:
    """Set a mock pin's level and call its edge callback with the edge's own time."""
    if pin._change_state(high) and pin.edges in ("both", "rising" if high else "falling"):
        callback = pin.when_changed
        if callback is not None:
            callback(ticks, high)


class GpioDriver:
    """Inputs, counters and tachometers on GPIO pins, plus optional outputs."""

    def __init__(self, options: GpioOptions, *, pin_factory: Any = None) -> None:
        self.o = options
        self.factory = pin_factory
        self.channels: dict[str, Channel] = {}
        self.in_pins: dict[str, Any] = {}
        self.out_pins: dict[str, tuple[Any, OutputConfig]] = {}
        self.generator: PulseGenerator | None = None
        self._t0: Any = None
        self._callbacks: list[Any] = []

    def _now(self, ticks: Any = None) -> float:
        return float(self.factory.ticks_diff(self.factory.ticks() if ticks is None else ticks, self._t0))

    def open(self) -> None:
        """Claim the pins and start edge detection."""
        if self.factory is None:
            self.factory = make_factory(self.o.backend, self.o.pin_factory)
        self._t0 = self.factory.ticks()
        try:
            for cfg in self.o.inputs:
                self._open_input(cfg)
            for out in self.o.outputs:
                pin = self.factory.pin(out.pin)
                pin.function = "output"
                pin.state = out.initial == out.active_high
                self.out_pins[out.name] = (pin, out)
        except DriverError:
            raise
        except Exception as exc:  # gpiozero raises its own PinError family
            self.close()
            raise DeviceNotFound(f"gpio: cannot claim pins: {exc}") from exc
        if self.o.backend is Backend.SIM:
            self.generator = PulseGenerator([(self.in_pins[c.name], c) for c in self.o.inputs], self.factory.ticks)

    def _open_input(self, cfg: InputConfig) -> None:
        pin = self.factory.pin(cfg.pin)
        pin.function = "input"
        pin.pull = "floating" if cfg.pull is Pull.NONE else str(cfg.pull)
        channel = Channel(cfg, bool(pin.state))
        pin.edges = "both"

        def changed(ticks: Any, state: Any) -> None:
            channel.edge(self._now(ticks), bool(state))

        self._callbacks.append(changed)  # pins hold only weak references to callbacks
        pin.when_changed = changed
        self.channels[cfg.name] = channel
        self.in_pins[cfg.name] = pin

    def read(self) -> Values:
        """Every input's state, count or rpm, named as configured."""
        if self.factory is None or self._t0 is None:
            raise DriverError("gpio: read before open")
        if self.generator is not None:
            self.generator.catch_up()
        now = self._now()
        return Values({name: ch.value(now) for name, ch in self.channels.items()})

    def write(self, name: str, on: bool) -> bool:
        """Switch an output on or off; ValueError for an unknown output."""
        if name not in self.out_pins:
            raise ValueError(f"gpio: no output named {name!r}")
        pin, cfg = self.out_pins[name]
        pin.state = bool(on) == cfg.active_high
        return bool(on)

    def close(self) -> None:
        """Stop the generator, switch outputs off, release pins (safe twice)."""
        self.generator = None
        for pin, cfg in self.out_pins.values():
            pin.state = not cfg.active_high
            pin.close()
        for pin in self.in_pins.values():
            pin.when_changed = None
            pin.close()
        self.out_pins.clear()
        self.in_pins.clear()


def check(o: GpioOptions) -> list[str]:
    """Cross-field checks: unique names and pins."""
    out: list[str] = []
    names = [c.name for c in o.inputs] + [c.name for c in o.outputs]
    pins = [str(c.pin) for c in o.inputs] + [str(c.pin) for c in o.outputs]
    for label, items in (("name", names), ("pin", pins)):
        dup = sorted({x for x in items if items.count(x) > 1})
        if dup:
            out.append(f"inputs: duplicate {label}(s) {', '.join(dup)} across inputs and outputs")
    if not o.inputs and not o.outputs:
        out.append("inputs: nothing configured")
    return out


KIND_VALUE = {
    Kind.INPUT: (DType.BOOL, "", "debounced state, true when active"),
    Kind.COUNTER: (DType.INT, "", "activations counted since start"),
    Kind.TACHOMETER: (DType.FLOAT32, "rpm", "shaft speed from the pulses"),
}


def declared(o: GpioOptions) -> list[ValueSpec]:
    """One value per input: a state (bool), a count (int) or a speed (rpm)."""
    return [ValueSpec(i.name, *KIND_VALUE[i.kind]) for i in o.inputs]


SPEC = DriverSpec(
    name="gpio",
    factory=GpioDriver,
    options=GpioOptions,
    provides=frozenset({Capability.DIGITAL, Capability.VALUES}),
    description="GPIO via gpiozero: debounced inputs, edge counters, tachometer rpm, optional outputs",
    check=check,
    values=declared,
    device_access=on_hardware("gpio"),
)
