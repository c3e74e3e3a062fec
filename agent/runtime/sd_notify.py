"""systemd notify protocol (sd_notify) spoken directly over the ``NOTIFY_SOCKET`` datagram socket.

No dependency: a notification is one datagram of ``KEY=value`` lines sent to the AF_UNIX socket
named in ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace). Outside systemd the
variable is unset and every call is a no-op, so the runtime calls the notifier unconditionally.

The watchdog ping is sent by :func:`watchdog_task`, a coroutine on the runtime's event loop, never
by a thread: when the loop is wedged the pings stop and systemd kills and restarts the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def socket_address(value: str) -> str | None:
    """Turn a ``NOTIFY_SOCKET`` value into an address for ``sendto`` (None when unusable)."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # empty, or a vsock address (``vsock:CID:PORT``) we do not need


class Notifier:
    """Sends notifications to systemd; a silent no-op when ``NOTIFY_SOCKET`` is unset."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env: Mapping[str, str] = os.environ if env is None else env
        self.address = socket_address(self._env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self.address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send one datagram of ``KEY=value`` lines; return True if it was sent."""
        if self.address is None:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # never stall the event loop on a full queue
            self._sock.sendto(payload, self.address)
        except OSError as exc:
            self._report_failure(exc)
            return False
        return True

    def _report_failure(self, exc: OSError) -> None:
        if not self._failed:  # log once: a broken socket must not flood the journal
            log.warning("systemd notify failed (further failures not logged): %s", exc)
            self._failed = True
        self.close()

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd the service is up (``READY=1``), optionally with a status line."""
        if status is None:
            return self.notify(READY=1)
        return self.notify(READY=1, STATUS=status)

    def status(self, text: str) -> bool:
        """Set the free-form status line shown by ``systemctl status``."""
        return self.notify(STATUS=text.replace("\n", " "))

    def stopping(self) -> bool:
        """Tell systemd the service is shutting down (``STOPPING=1``)."""
        return self.notify(STOPPING=1)

    def reloading(self) -> bool:
        """Tell systemd a reload started; send :meth:`ready` again when it is done."""
        return self.notify(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def watchdog(self) -> bool:
        """Ping the service watchdog (``WATCHDOG=1``)."""
        return self.notify(WATCHDOG=1)

    def extend_timeout(self, timeout_s: float) -> bool:
        """Ask for more time to start or stop (``EXTEND_TIMEOUT_USEC``), e.g. while flushing the spool."""
        return self.notify(EXTEND_TIMEOUT_USEC=int(timeout_s * 1_000_000))

    def watchdog_interval_s(self) -> float | None:
        """Return ``WatchdogSec=`` in seconds when it applies to this process, else None."""
        pid = self._env.get("WATCHDOG_PID", "")
        if pid and pid != str(os.getpid()):
            return None  # the watchdog belongs to another process (e.g. our parent)
        try:
            usec = int(self._env.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        return usec / 1_000_000 if usec > 0 else None

    def close(self) -> None:
        """Close the socket (a later notification reopens it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def watchdog_task(
    notifier: Notifier,
    *,
    interval_s: float | None,
    healthy: Callable[[], bool] | None = None,
) -> None:
    """Ping ``WATCHDOG=1`` every ``interval_s / 2`` from the event loop while ``healthy()`` holds.

    ``interval_s`` is the watchdog timeout (:meth:`Notifier.watchdog_interval_s`); None returns at
    once. A blocked loop cannot run this coroutine, so the pings stop and systemd acts.
    """
    if interval_s is None or interval_s <= 0 or not notifier.enabled:
        return
    period_s = interval_s / 2
    was_healthy = True
    while True:
        ok = _check(healthy)
        if ok:
            notifier.watchdog()
            if not was_healthy:
                log.warning("runtime healthy again: watchdog pings resumed")
        elif was_healthy:
            log.error("runtime unhealthy: withholding watchdog pings, systemd will restart the agent")
            notifier.status("unhealthy: watchdog pings withheld")
        was_healthy = ok
        await asyncio.sleep(period_s)


def _check(healthy: Callable[[], bool] | None) -> bool:
    """Evaluate the health check; a check that raises counts as unhealthy."""
    if healthy is None:
        return True
    try:
        return bool(healthy())
    except Exception:
        log.exception("health check failed")
        return False
