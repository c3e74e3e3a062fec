"""A broker outage without stopping the broker: a TCP relay between the agent and the broker that
can drop every connection and stop listening (the agent sees connection refused, as when the broker
or the network is gone), while the bench's own subscriber stays connected to the broker itself and
so sees everything the agent delivers afterwards."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from edge_agent.agent.devtools.local_broker import free_port

CHUNK_B = 65536


class OutageProxy:
    """127.0.0.1:``port`` relayed to 127.0.0.1:``target_port``; ``down()`` and ``up()`` may repeat."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="soak-proxy")
        self._thread.start()
        self.up()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _call(self, coro: object) -> None:
        fut: Future[None] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        fut.result(10)

    def up(self) -> None:
        """Listen again (the agent's next reconnect attempt gets through)."""
        self._call(self._up())

    def down(self) -> None:
        """Close every relayed connection at once and stop listening."""
        self._call(self._down())

    def close(self) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    async def _up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy one direction until either side ends; then end both."""
        try:
            while chunk := await src.read(CHUNK_B):
                dst.write(chunk)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(dst)
            dst.transport.abort()
