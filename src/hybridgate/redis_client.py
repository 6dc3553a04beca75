"""One way to open a connection to the ``[redis]`` server, for every component that shares it.

Timeouts are short on purpose: a Redis that does not answer within ``timeout_s`` is treated as
down by its caller (a cache miss, a local rate limit), rather than holding requests up. A client
retries once, at once, on a connection error only: a pooled connection goes stale when Redis
restarts, and only a second failure (on a new connection) means Redis is down. Never on a
timeout: Redis may have run the command and only answered late, and redis-py would send it (or
a whole MULTI/EXEC) again; a timeout is an outage for the caller, as above. At most
``max_connections`` connections per process.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from hybridgate.config import RedisConfig
from hybridgate.errors import ConfigError


def redis_client(config: RedisConfig, env: Mapping[str, str]) -> Redis:
    password = None
    if config.password_env is not None:
        password = env.get(config.password_env)
        if not password:
            raise ConfigError(f"[redis] password_env names {config.password_env}, which is not set")
    # A burst beyond max_connections waits (up to timeout_s) for a free connection instead of
    # failing at once, as redis-py's default pool would.
    pool = BlockingConnectionPool.from_url(
        config.url,
        max_connections=config.max_connections,
        timeout=config.timeout_s,
        password=password,
        socket_timeout=config.timeout_s,
        socket_connect_timeout=config.timeout_s,
        retry=_retry_once(),
    )
    client = Redis(connection_pool=pool, retry=_retry_once())
    client.auto_close_connection_pool = True  # the client owns its pool: aclose() closes both
    return client


def _retry_once() -> Retry:
    """One retry on a connection error; redis-py's default would retry timeouts too."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
