"""When each replica reloads its learned router files: on a Redis signal, or when a file changes.

With ``[redis]``, every replica (every worker process) subscribes to the channel
``{key_prefix}router-reload`` and reloads on any message; ``hybridgate router reload`` publishes
one, and Redis answers how many subscribers received it. The subscription outlives Redis
restarts: on a lost connection the task logs it, waits (0.5 s, doubling up to 10 s) and
subscribes again, then reloads if a file changed meanwhile, so a signal sent during the outage is
not lost. Without ``[redis]`` the task hashes the files every ``[router] reload_interval_s``.

A reload runs in a worker thread (it reads and parses files) under a lock shared with
``POST /admin/router/reload``; a refused reload is logged and changes nothing. Any other error
(a reload's or the subscription's) is logged with its traceback and the task backs off and keeps
going: hot reload never stops for good. Nothing here raises into the gateway. Beside the
pipeline, never on the request path: ``Gateway.start`` starts the task and ``Gateway.aclose`` stops it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from hybridgate.config import GatewayConfig, RedisConfig
from hybridgate.errors import RouterReloadError
from hybridgate.router.reload import RouterReloader
from hybridgate.router.rules import RuleRouter
from hybridgate.stores.redis import redis_client

log = logging.getLogger("hybridgate.router")

CHANNEL = "router-reload"
BACKOFF_S = (0.5, 10.0)  # first wait after a lost connection, and the cap as it doubles
READ_WAIT_S = 1.0  # how long one read of the subscription waits for a message

Versions = dict[str, dict[str, Any]]


def reload_channel(config: RedisConfig) -> str:
    return f"{config.key_prefix}{CHANNEL}"


async def publish_reload(config: RedisConfig, env: Mapping[str, str]) -> int:
    """Signal every subscribed replica; returns how many received it (Redis errors propagate)."""
    client = redis_client(config, env)
    try:
        received: int = await client.publish(reload_channel(config), "reload")
        return received
    finally:
        await client.aclose()


class RouterReloads:
    """One replica's reload trigger: a subscription or a polling loop, and the admin's reload."""

    def __init__(
        self, reloader: RouterReloader, redis: Redis | None, channel: str, interval_s: float
    ) -> None:
        self.reloader = reloader
        self._redis = redis
        self._channel = channel
        self._interval_s = interval_s
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.listening = False  # subscribed right now (with [redis])

    def versions(self) -> Versions:
        return self.reloader.versions()

    async def reload(self) -> Versions:
        """Reload now (raises ``RouterReloadError``, the old routers still in use, on a bad file)."""
        async with self._lock:
            return await asyncio.to_thread(self.reloader.reload)

    async def start(self) -> None:
        if self._task is None and (self._redis is not None or self._interval_s > 0):
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    async def _run(self) -> None:
        if self._redis is None:
            await self._poll()
        else:
            await self._listen(self._redis)

    async def _poll(self) -> None:
        delay = self._interval_s
        while True:
            await asyncio.sleep(delay)
            if await self._reload_logged(changed_only=True):
                delay = self._interval_s
            else:  # an unexpected failure (logged): back off, up to 10 s or the interval
                delay = min(delay * 2, max(BACKOFF_S[1], self._interval_s))

    async def _listen(self, redis: Redis) -> None:
        delay = BACKOFF_S[0]
        while True:
            try:
                await self._subscribed(redis)
            except (RedisError, OSError) as exc:
                if self.listening:
                    delay = BACKOFF_S[0]  # it worked for a while: start the backoff afresh
                log.warning("router reload signal: redis unavailable (%s); retrying in %.1fs", exc, delay)
            except Exception:  # anything else must not end hot reload for good
                log.exception("router reload signal: unexpected error; resubscribing in %.1fs", delay)
            finally:
                self.listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_S[1])

    async def _subscribed(self, redis: Redis) -> None:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            self.listening = True
            await self._reload_logged(changed_only=True)  # catch up on signals sent while away
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=READ_WAIT_S)
                if message is not None and message["type"] == "message":
                    await self._reload_logged(changed_only=False)

    async def _reload_logged(self, changed_only: bool) -> bool:
        """Reload and log a refusal; False after an unexpected error (logged with its traceback,
        the old routers still in use), so the caller backs off instead of ending."""
        async with self._lock:
            try:
                reload = self.reloader.reload_if_changed if changed_only else self.reloader.reload
                await asyncio.to_thread(reload)
            except RouterReloadError as exc:
                log.error("%s", exc.message)
            except Exception:  # e.g. the embedding failed to load: keep the task alive
                log.exception("router reload failed unexpectedly; the old router files stay in use")
                return False
        return True


def build_router_reloads(
    config: GatewayConfig, router: RuleRouter, env: Mapping[str, str]
) -> RouterReloads | None:
    """None when no route is learned: nothing to reload."""
    if not router.learned:
        return None
    redis = redis_client(config.redis, env) if config.redis is not None else None
    channel = reload_channel(config.redis) if config.redis is not None else ""
    return RouterReloads(RouterReloader(config, router), redis, channel, config.router.reload_interval_s)
