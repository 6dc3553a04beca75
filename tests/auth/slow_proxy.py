"""A TCP proxy on loopback, in the test's event loop, that can hold Redis's answers back.

Requests go through to the real server at once; answers wait ``delay_s`` first. So with a delay
beyond the client's timeout, Redis runs a command but the client sees a timeout, as with a slow
or overloaded Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class SlowProxy:
    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self.delay_s = 0.0
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slow: bool) -> None:
        try:
            while data := await reader.read(65536):
                if slow and self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self._target_port)
        for task in (self._pipe(client_r, server_w, False), self._pipe(server_r, client_w, True)):
            self._tasks.add(asyncio.create_task(task))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SlowProxy]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()
