"""One way to open a connection to the ``[redis]`` server, for every component that shares it.

Timeouts are short on purpose: a Redis that does not answer within ``timeout_s`` is treated as
down by its caller (a cache miss, a local rate limit), rather than holding requests up. A client
retries once, at once, on a connection error only: a pooled connection goes stale when Redis
restarts, and only a second failure (on a new connection) means Redis is down. Never on a
timeout: Redis may have run the command and only answered late, and redis-py would send it (or
a whole MULTI/EXEC) again; a timeout is an outage for the caller, as above. At most
``max_connections`` connections per process.

A circuit (``RedisCircuit``), shared by the clients of one process that are given the same one
(the cache and the rate limiter): once a call times out (a hung, overloaded or unreachable-by-
silence Redis: the failures that cost ``timeout_s`` each), every call fails at once with a
ConnectionError, which its caller treats exactly as a refused connection. A refusal trips nothing:
it costs no time, and callers handle it as before.
Every ``retry_s`` a PING probes Redis in the background; no call waits for it (the call that
started it fails at once like the others), and its answer closes the circuit for the calls after
it. So a hung Redis costs the calls that found it hung one ``timeout_s``, then nothing, and looks
to every caller exactly like a refused connection.
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
from redis.exceptions import TimeoutError as RedisTimeoutError

from hybridgate.config import RedisConfig
from hybridgate.errors import ConfigError

log = logging.getLogger(__name__)
RETRY_S = 1.0


class RedisCircuit:
    """Whether calls to one Redis should be tried at all; ``reason`` while they fail."""

    def __init__(self, retry_s: float = RETRY_S) -> None:
        self.retry_s = retry_s
        self.reason: str | None = None
        self._next_probe = 0.0  # time.monotonic() from which the next call starts a probe
        self._probe: asyncio.Task[None] | None = None

    def admit(self, probe: Callable[[], Awaitable[None]]) -> None:
        """Return if calls may go to Redis; else raise at once. While open, the first call from
        ``_next_probe`` on also starts ``probe`` on the running loop, and does not wait for it
        either (a wait there delayed one request a second per process through a whole hang)."""
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
            self.reason = f"redis timing out since {since}"
            log.warning("%s: calls fail at once, a probe every %gs", self.reason, self.retry_s)
            self._next_probe = time.monotonic()  # the next call probes: a blip ends at once

    def answered(self) -> None:
        if self.reason is not None:
            log.warning("redis answers again (was: %s)", self.reason)
            self.reason = None


class _MarksTimeouts:
    """Mixed into a pool's connection class: notes whether the last failure was a timeout."""

    timed_out = False

    async def connect(self) -> None:
        try:
            await super().connect()  # type: ignore[misc]
        except (RedisTimeoutError, TimeoutError):
            self.timed_out = True
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except (RedisTimeoutError, TimeoutError):
            self.timed_out = True
            raise


class _CircuitPool(BlockingConnectionPool):
    """A pool that asks its circuit before lending a connection, and tells it how each came back:
    connected (answered), or disconnected after a timeout (redis-py disconnects a connection on
    any refusal, timeout or cut; the connection class notes which)."""

    circuit: RedisCircuit

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self.circuit.admit(self._ping)
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]

    async def release(self, connection: Any) -> None:
        if connection.is_connected:
            self.circuit.answered()
        elif connection.timed_out:
            connection.timed_out = False
            self.circuit.failed()
        await super().release(connection)

    async def _ping(self) -> None:
        """The circuit's probe: PING on a connection of this pool, within the socket timeouts."""
        connection = await super().get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_command("PING")
            await connection.read_response()
        except BaseException:
            connection.timed_out = True  # still failing, however: keep the circuit open
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
    base = pool.connection_class  # by the URL's scheme: plain, TLS or a Unix socket
    pool.connection_class = type(f"Timed{base.__name__}", (_MarksTimeouts, base), {})
    client = Redis(connection_pool=pool, retry=_retry_once())
    client.auto_close_connection_pool = True  # the client owns its pool: aclose() closes both
    return client


def _retry_once() -> Retry:
    """One retry on a connection error; redis-py's default would retry timeouts too."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
