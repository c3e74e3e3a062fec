"""``isolate = "process"``: an instance's driver in a supervised child process.

The agent side is :class:`ProcessDriver`, a driver whose ``open``/``read``/``close`` are ``async``
and forward each call to the child; the child (``python -m edge_agent.agent.runtime.process_isolation FD``) builds
the real driver and runs the calls. A hang past the deadline, a busy loop holding the child's GIL,
or a crash in a C extension (segfault) cost the child only: the agent kills it (SIGKILL) and the
instance reopens with its backoff, which starts a fresh child.

The protocol, one MessagePack object per message over a socketpair:

- agent -> child: ``[id, op, arg]``; op ``"init"`` (arg: ``{"ref": "module:ATTR", "name": ...,
  "options": {...}}``), ``"open"``, ``"read"``, ``"close"`` (arg: None);
- child -> agent: ``[id, true, result]`` or ``[id, false, {"type", "msg", "quality", "at"}]``.

Readings travel as maps: dataclasses as ``{"__dc": "module:Class", field: ...}`` (Values,
Waveform, TemperatureReading...), numpy arrays as ``{"__nd": [dtype, shape, bytes]}``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgpack
import msgspec
from edge_agent.drivers.errors import DriverError
from edge_agent.drivers.lanes import DriverHung

if TYPE_CHECKING:
    from edge_agent.agent.config.schema import Instance

KILL_WAIT_S = 1.0
WHERE_WAIT_S = 0.3  # how long a hung child may take to say where it is stuck before it is killed
WHERE = "where"  # the child's unasked message (ident 0): the frame its driver call is stuck in


def build_driver(inst: Instance) -> Any:
    """The agent's DriverFactory: the instance's driver in a child when ``isolate = "process"``, else here."""
    assert inst.driver is not None
    if inst.isolate == "process":
        return ProcessDriver(inst.driver, inst.driver_options, instance=inst.name)
    return inst.driver.factory(inst.driver_options)


class IsolatedError(DriverError):
    """An error raised by the driver in the child, or the child's death; ``at`` says where."""

    def __init__(self, message: str, *, quality: str = "device_error", at: str = "") -> None:
        super().__init__(message)
        self.quality, self.at = quality, at


# --- codec: readings as plain MessagePack ---------------------------------------------------
def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        cls = type(obj)
        d = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return {"__dc": f"{cls.__module__}:{cls.__qualname__}", **d}
    if hasattr(obj, "__array__") and hasattr(obj, "dtype"):
        import numpy as np

        arr = np.ascontiguousarray(obj)
        return {"__nd": [arr.dtype.str, list(arr.shape), arr.tobytes()]}
    if isinstance(obj, tuple | frozenset | set):
        return list(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"cannot send a {type(obj).__name__} from the driver process")


def _hook(d: dict[Any, Any]) -> Any:
    if "__nd" in d:
        import numpy as np

        dtype, shape, raw = d["__nd"]
        return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape)
    ref = d.get("__dc")
    if isinstance(ref, str):
        module, _, name = ref.partition(":")
        cls: Any = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{ref} is not a dataclass")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {
            k: (tuple(v) if isinstance(v, list) and "tuple" in str(fields[k].type) else v)
            for k, v in d.items()
            if k in fields
        }
        factory: Any = cls
        return factory(**kwargs)
    return d


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpacker() -> msgpack.Unpacker:
    return msgpack.Unpacker(object_hook=_hook, raw=False, strict_map_key=False, max_buffer_size=256 * 1024 * 1024)


def spec_ref(spec: Any) -> str:
    """``module:ATTR`` where the child finds this DriverSpec (else "": it looks the name up in the registry)."""
    for modname in {spec.factory.__module__, spec.factory.__module__.rsplit(".", 1)[0]}:
        mod = sys.modules.get(modname)
        for attr, value in vars(mod).items() if mod is not None else ():
            if value is spec:
                return f"{modname}:{attr}"
    return ""


# --- the agent side -------------------------------------------------------------------------
class ProcessDriver:
    """A driver running in a child process; every method is async and the child is killed on a hang."""

    def __init__(self, spec: Any, options: Any, *, instance: str) -> None:
        self.spec, self.options, self.instance = spec, options, instance
        self.deadline_s: Any = None  # what the real driver declares, learnt at init
        self.failure: DriverError | None = None  # the child died or was killed: the runtime reopens
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._unpacker = unpacker()
        self._next_id = 0

    async def open(self) -> Any:
        await self._spawn()
        return await self._request("open")

    async def read(self) -> Any:
        return await self._request("read")

    async def close(self) -> None:
        """Ask the child to close the device (briefly), then end it whatever it does."""
        if self._proc is None:
            return
        try:
            if self.failure is None:
                await asyncio.wait_for(self._request("close"), KILL_WAIT_S)
        except Exception:
            pass  # a child that cannot close is killed below
        finally:
            await self.kill()

    async def kill(self) -> None:
        """SIGKILL the child (if alive) and reap it without blocking the loop."""
        proc, self._proc = self._proc, None
        if self._writer is not None:
            self._writer.close()
            self._writer = self._reader = None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        end = time.monotonic() + KILL_WAIT_S
        while proc.poll() is None and time.monotonic() < end:
            await asyncio.sleep(0.01)

    async def _spawn(self) -> None:
        await self.kill()
        self.failure = None
        ours, theirs = socket.socketpair()
        cmd = [sys.executable, "-m", "edge_agent.agent.runtime.process_isolation", str(theirs.fileno())]
        self._proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        self.pid = self._proc.pid
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self._unpacker = unpacker()
        init = {"ref": spec_ref(self.spec), "name": self.spec.name, "options": msgspec.to_builtins(self.options)}
        self.deadline_s = await self._request("init", init)

    async def _request(self, op: str, arg: Any = None) -> Any:
        if self.failure is not None:
            raise self.failure
        if self._writer is None or self._reader is None:
            raise IsolatedError(f"{op}(): the driver process is not running (open() first)", quality="comm_error")
        self._next_id += 1
        ident = self._next_id
        started = time.monotonic()
        try:
            self._writer.write(pack([ident, op, arg]))
            await self._writer.drain()
            while True:
                for msg in self._unpacker:
                    if msg[0] == ident:
                        return self._result(msg)
                data = await self._reader.read(1 << 16)
                if not data:
                    raise await self._died(op)
                self._unpacker.feed(data)
        except (ConnectionError, OSError) as exc:
            raise await self._died(op) from exc
        except asyncio.CancelledError:  # past the deadline, or the instance stops: the child goes
            at = await self._where()
            self.failure = DriverHung(
                f"{op}() did not return within its deadline: the driver process (pid {self.pid}) was killed",
                call=f"{op}()",
                waited_s=time.monotonic() - started,
                at=at,
            )
            await self.kill()
            raise

    async def _where(self) -> str:
        """Ask the hung child where its driver call is (SIGUSR1: it answers from a signal handler)."""
        if self._proc is None or self._reader is None or self._proc.poll() is not None:
            return ""
        try:
            self._proc.send_signal(signal.SIGUSR1)
            async with asyncio.timeout(WHERE_WAIT_S):
                while True:
                    for msg in self._unpacker:
                        if msg[0] == 0 and msg[1] == WHERE:
                            return str(msg[2])
                    data = await self._reader.read(1 << 16)
                    if not data:
                        return ""
                    self._unpacker.feed(data)
        except (TimeoutError, OSError, ValueError):
            return ""

    def _result(self, msg: list[Any]) -> Any:
        _, ok, payload = msg
        if ok:
            return payload
        text = f"{payload.get('type', 'Error')}: {payload.get('msg', '')}".rstrip(": ")
        raise IsolatedError(text, quality=payload.get("quality") or "device_error", at=payload.get("at", ""))

    async def _died(self, op: str) -> DriverError:
        proc = self._proc
        end = time.monotonic() + KILL_WAIT_S
        while proc is not None and proc.poll() is None and time.monotonic() < end:
            await asyncio.sleep(0.01)
        code = proc.poll() if proc is not None else None
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        self.failure = IsolatedError(f"the driver process died during {op}() ({how})", quality="comm_error")
        return self.failure


# --- the child side -------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: the kernel kills this child if the agent dies (even while the driver busy-loops)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _build(arg: dict[str, Any]) -> Any:
    ref = arg.get("ref") or ""
    if ref:
        module, _, attr = ref.partition(":")
        spec = getattr(importlib.import_module(module), attr)
    else:
        from edge_agent.agent.config.registry import load_registry

        spec = load_registry().drivers[arg["name"]]
    return spec.factory(msgspec.convert(arg["options"], spec.options))


def _error(exc: BaseException) -> dict[str, Any]:
    from edge_agent.drivers.lanes import where

    return {
        "type": type(exc).__name__,
        "msg": str(exc),
        "quality": getattr(exc, "quality", None) if isinstance(exc, DriverError) else None,
        "at": where(exc.__traceback__),
    }


def _answer_where(sock: socket.socket) -> None:
    """On SIGUSR1 (the agent's deadline passed), send the frame the driver is in: the main thread
    is stuck in the driver, so nothing else writes to the socket meanwhile."""
    from edge_agent.drivers.lanes import where

    def handler(signum: int, frame: Any) -> None:
        try:
            sock.sendall(pack([0, WHERE, where(frame)]))
        except OSError:
            pass

    signal.signal(signal.SIGUSR1, handler)


def child_main(fd: int) -> int:
    """Serve one driver over the socket ``fd`` until the agent closes it."""
    _die_with_parent()
    sock = socket.socket(fileno=fd)
    _answer_where(sock)
    loop = asyncio.new_event_loop()  # async drivers keep one loop across open/read/close
    unpack, driver = unpacker(), None
    while True:
        data = sock.recv(1 << 16)
        if not data:
            return 0
        unpack.feed(data)
        for ident, op, arg in unpack:
            try:
                if op == "init":
                    driver = _build(arg)
                    result = getattr(driver, "deadline_s", None)
                else:
                    fn = getattr(driver, op)
                    result = loop.run_until_complete(fn()) if inspect.iscoroutinefunction(fn) else fn()
                    if inspect.isawaitable(result):
                        result = loop.run_until_complete(_await(result))
                reply = pack([ident, True, result])
            except Exception as exc:
                reply = pack([ident, False, _error(exc)])
            sock.sendall(reply)


async def _await(aw: Any) -> Any:
    return await aw


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(child_main(int(sys.argv[1])))
