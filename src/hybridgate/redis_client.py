"""One way to open a connection to the ``[redis]`` server, for every component that shares it.

Timeouts are short on purpose: a Redis that does not answer within ``timeout_s`` is treated as
down by its caller (a cache miss, a local rate limit), rather than holding requests up.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from hybridgate.config import RedisConfig


def redis_client(config: RedisConfig, env: Mapping[str, str]) -> Redis:
    password = env.get(config.password_env) if config.password_env else None
    client: Redis = Redis.from_url(
        config.url,
        password=password,
        socket_timeout=config.timeout_s,
        socket_connect_timeout=config.timeout_s,
        health_check_interval=30,
    )
    return client
