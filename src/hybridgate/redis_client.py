"""One way to open a connection to the ``[redis]`` server, for every component that shares it.

Timeouts are short on purpose: a Redis that does not answer within ``timeout_s`` is treated as
down by its caller (a cache miss, a local rate limit), rather than holding requests up. A client
retries once, at once, on a connection error only: a pooled connection goes stale when Redis
restarts, and only a second failure (on a new connection) means Redis is down. Never on a
timeout: Redis may have run the command and only answered late, and redis-py would send it (or
a whole MULTI/EXEC) again; a timeout is an outage for the caller, as above. At most
``max_connections`` connections per process.

A circuit (``RedisCircuit``), shared by the clients of one process that are given the same one
(the cache and the rate limiter): once a call fails on its connection, whether Redis refused it,
never answered (hung: a timeout), or cut it, every call fails at once with a ConnectionError.
Every ``retry_s`` a PING probes Redis in the background (never on a caller's time), and its
answer closes the circuit. So a hung Redis costs the one call that found it hung a ``timeout_s``,
then nothing per request, and looks to every caller exactly like a refused connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from hybridgate.config import RedisConfig
from hybridgate.errors import ConfigError

log = logging.getLogger(__name__)
RETRY_S = 1.0


class RedisCircuit:
    """Whether calls to one Redis should be tried at all; ``reason`` while they fail."""

    def __init__(self, retry_s: float = RETRY_S) -> None:
        self.retry_s = retry_s
        self.reason: str | None = None
        self._next_probe = 0.0  # time.monotonic() of the next background probe
        self._probe: asyncio.Task[None] | None = None

    def check(self, probe: Callable[[], Awaitable[None]]) -> None:
        """Raise at once while open, starting ``probe`` in the background when one is due."""
        if self.reason is None:
            return
        now = time.monotonic()
        if now >= self._next_probe and (self._probe is None or self._probe.done()):
            self._next_probe = now + self.retry_s
            self._probe = asyncio.get_running_loop().create_task(self._probing(probe))
        raise RedisConnectionError(f"{self.reason}; probed in the background every {self.retry_s:g}s")

    async def _probing(self, probe: Callable[[], Awaitable[None]]) -> None:
        try:
            await probe()  # its connection's release says how it went (answered / failed)
        except Exception:  # still failing: logged once per outage by failed()
            self.failed()

    def failed(self) -> None:
        if self.reason is None:
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.reason = f"redis failing since {since} (refused, timed out or cut)"
            log.warning("%s: calls fail at once, a probe every %gs", self.reason, self.retry_s)
            self._next_probe = time.monotonic() + self.retry_s

    def answered(self) -> None:
        if self.reason is not None:
            log.warning("redis answers again (was: %s)", self.reason)
            self.reason = None


class _CircuitPool(BlockingConnectionPool):
    """A pool that asks its circuit before lending a connection, and tells it how each came back:
    redis-py disconnects a connection on any refusal, timeout or cut, and on nothing else."""

    circuit: RedisCircuit

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self.circuit.check(self._ping)
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]

    async def release(self, connection: Any) -> None:
        if connection.is_connected:
            self.circuit.answered()
        else:
            self.circuit.failed()
        await super().release(connection)

    async def _ping(self) -> None:
        """The circuit's probe: PING on a connection of this pool, within the socket timeouts."""
        connection = await super().get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_command("PING")
            await connection.read_response()
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await self.release(connection)


def redis_client(config: RedisConfig, env: Mapping[str, str], circuit: RedisCircuit | None = None) -> Redis:
    """A client of ``[redis]``; pass the same ``circuit`` to clients that should share an outage."""
    password = None
    if config.password_env is not None:
        password = env.get(config.password_env)
        if not password:
            raise ConfigError(f"[redis] password_env names {config.password_env}, which is not set")
    # A burst beyond max_connections waits (up to timeout_s) for a free connection instead of
    # failing at once, as redis-py's default pool would.
    pool = _CircuitPool.from_url(
        config.url,
        max_connections=config.max_connections,
        timeout=config.timeout_s,
        password=password,
        socket_timeout=config.timeout_s,
        socket_connect_timeout=config.timeout_s,
        retry=_retry_once(),
    )
    pool.circuit = circuit if circuit is not None else RedisCircuit()
    client = Redis(connection_pool=pool, retry=_retry_once())
    client.auto_close_connection_pool = True  # the client owns its pool: aclose() closes both
    return client


def _retry_once() -> Retry:
    """One retry on a connection error; redis-py's default would retry timeouts too."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
