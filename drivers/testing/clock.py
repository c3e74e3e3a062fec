"""A clock that tests advance by hand: the same two methods as the runtime's clock."""

from __future__ import annotations


class ManualClock:
    """Monotonic seconds and wall-clock milliseconds that move only when the test says so."""

    def __init__(self, start_s: float = 1000.0, epoch_ms: int = 1_700_000_000_000) -> None:
        self.now = start_s
        self._epoch_ms = epoch_ms - int(start_s * 1000)

    def monotonic(self) -> float:
        """Seconds since an arbitrary start, like time.monotonic()."""
        return self.now

    def time_ms(self) -> int:
        """Milliseconds since the Unix epoch, consistent with monotonic()."""
        return self._epoch_ms + int(self.now * 1000)

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back (advance {seconds})")
        self.now += seconds

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock only, either way (NTP's first sync on a Pi without RTC); monotonic runs on."""
        self._epoch_ms += int(seconds * 1000)

    def sleep(self, seconds: float) -> None:
        """A ``sleep`` to inject into a driver: returns at once, having advanced the clock."""
        self.advance(max(seconds, 0.0))

    def __call__(self) -> float:
        """A ``clock: Callable[[], float]`` for drivers that take one (``clock=ManualClock()``)."""
        return self.now
