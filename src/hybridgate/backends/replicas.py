"""A pool of servers behind one ``openai_compat`` backend: least-busy choice, health, spill-over.

Step 3 of the flow, inside backends/openai_compat.py. Every request takes a ``Replica`` from the
pool and gives it back when its answer has been read:

- **least busy**: the usable server with the fewest requests in flight; ties go round-robin;
- **health**: a server is skipped while its last health poll (``health_path``) failed, or for
  ``replica_cooldown_s`` after it refused a connection (only when the pool has another server);
- **per-server limit**: with ``replica_max_in_flight``, a request waits (FIFO) when every usable
  server is full;
- **spill-over**: when ``spill_queue_depth`` requests already wait, or while the pool is busy and
  its recent time to first byte is over ``spill_latency_ms``, ``acquire`` raises
  ``BackendOverloadedError`` at once, so the cascade serves the request from the next tier. The
  privacy guard has already removed cloud tiers from a ``local_only`` request's route, so such a
  request is never spilled: it gets the 503.

Asyncio bookkeeping plus one GET per server per health interval; it must not send chat
requests or read their bodies (that is openai_compat.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass

import aiohttp

from hybridgate.backends.http import env_proxy
from hybridgate.config import OpenAICompatBackend as OpenAICompatConfig
from hybridgate.errors import BackendOverloadedError, UpstreamUnavailableError

__all__ = ["Replica", "ReplicaPool"]

log = logging.getLogger("hybridgate.backends")

LATENCY_WEIGHT = 0.3  # of the newest sample in the moving average of time to first byte
HEALTH_TIMEOUT_S = 5.0  # a health poll slower than this (or the interval) counts as a failure


@dataclass(eq=False)
class Replica:
    """One server of the pool and what the pool knows about it."""

    base_url: str
    url: str  # its chat-completions endpoint
    health_url: str | None
    proxy: str | None
    in_flight: int = 0
    served: int = 0  # requests it took (tries included)
    healthy: bool = True  # the last health poll; True until one fails
    down_until: float = 0.0  # refused a connection: skipped until then (monotonic clock)

    @classmethod
    def of(cls, base_url: str, health_path: str | None) -> Replica:
        url = f"{base_url.rstrip('/')}/chat/completions"
        health = urllib.parse.urljoin(base_url, health_path) if health_path else None
        return cls(base_url, url, health, env_proxy(url))

    def usable(self, now: float) -> bool:
        return self.healthy and now >= self.down_until


class ReplicaPool:
    def __init__(
        self, name: str, config: OpenAICompatConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.replicas = [Replica.of(url, config.health_path) for url in config.base_urls()]
        self._config = config
        self._clock = clock
        self._next = 0  # where the round-robin among equally busy servers starts
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._woken = 0  # waiters told a slot is free that have not yet run to take it
        self.latency_ms: float | None = None  # moving average of time to first byte

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    @property
    def waiting(self) -> int:
        return len(self._waiters) + self._woken

    async def acquire(self, tried: Collection[Replica] = ()) -> Replica:
        """The least busy usable server not in ``tried``, once it has a free slot."""
        self._refuse_if_slow()
        replica = self._pick(tried)
        if replica is None or self.waiting:  # full, or others were first: queue behind them
            if self.waiting >= self._config.spill_queue_depth:
                raise self._overloaded(f"{self.in_flight} in flight, {self.waiting} waiting")
            replica = None
            while replica is None:  # once queued, never refused: a woken waiter only re-checks
                await self._wait()
                replica = self._pick(tried)
        replica.in_flight += 1
        replica.served += 1
        return replica

    def release(self, replica: Replica, first_byte_ms: float | None = None) -> None:
        replica.in_flight -= 1
        if first_byte_ms is not None:
            last = self.latency_ms if self.latency_ms is not None else first_byte_ms
            self.latency_ms = last + LATENCY_WEIGHT * (first_byte_ms - last)
        self._wake(1)

    def refused(self, replica: Replica, tried: Collection[Replica]) -> bool:
        """``replica`` refused a connection: skip it for a while. True if an untried server is left."""
        if len(self.replicas) > 1:
            replica.down_until = self._clock() + self._config.replica_cooldown_s
            log.warning("backend '%s': %s refused a connection; skipping it", self.name, replica.base_url)
            self._wake(len(self._waiters))  # waiters re-check: maybe nothing is usable any more
        now = self._clock()
        return any(r.usable(now) for r in self.replicas if r is not replica and r not in tried)

    def _pick(self, tried: Collection[Replica]) -> Replica | None:
        """None when every usable server is full; raises when none is usable at all."""
        now = self._clock()
        limit = self._config.replica_max_in_flight
        if len(self.replicas) == 1:  # one server (most backends): the same choice without the lists
            only = self.replicas[0]
            if not only.usable(now) or only in tried:
                raise UpstreamUnavailableError(self._no_server_message())
            return None if limit is not None and only.in_flight >= limit else only
        usable = [r for r in self.replicas if r.usable(now) and r not in tried]
        if not usable:
            raise UpstreamUnavailableError(self._no_server_message())
        fewest = min(r.in_flight for r in usable)
        if limit is not None and fewest >= limit:
            return None
        count = len(self.replicas)
        order = [self.replicas[(self._next + i) % count] for i in range(count)]
        chosen = next(r for r in order if r in usable and r.in_flight == fewest)
        self._next = (self.replicas.index(chosen) + 1) % count
        return chosen

    def _refuse_if_slow(self) -> None:
        limit = self._config.spill_latency_ms
        # Only while busy: an idle pool's average is stale, and letting a request through is how
        # it gets a fresh sample once the slow answers have finished.
        if limit is not None and self.latency_ms is not None and self.latency_ms > limit and self.in_flight:
            raise self._overloaded(f"recent time to first byte {self.latency_ms:.0f} ms > {limit:.0f} ms")

    def _overloaded(self, why: str) -> BackendOverloadedError:
        error = BackendOverloadedError(f"backend '{self.name}' is saturated ({why})")
        error.retry_after_s = 1.0
        error.headers["retry-after"] = "1"  # what a local_only caller, who cannot spill, sees
        return error

    def _no_server_message(self) -> str:
        # Servers by their place in the config: their URLs are for the log, not the caller.
        states = ", ".join(f"server {i} {self._state(r)}" for i, r in enumerate(self.replicas, start=1))
        return f"backend '{self.name}' has no healthy server: {states}"

    def _state(self, replica: Replica) -> str:
        if not replica.healthy:
            return "failed its health check"
        return "refused a connection" if replica.down_until > self._clock() else "tried already"

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._woken -= 1
                self._wake(1)  # we were woken but will not take the slot: pass it on
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        self._woken -= 1

    def _wake(self, count: int) -> None:
        while count > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._woken += 1
                count -= 1

    async def watch_health(self, session: aiohttp.ClientSession) -> None:
        """Poll every server's health URL forever (cancel to stop); the first round at once."""
        while True:
            await self.poll_health(session)
            await asyncio.sleep(self._config.health_interval_s)

    async def poll_health(self, session: aiohttp.ClientSession) -> None:
        await asyncio.gather(*(self._probe(session, r) for r in self.replicas if r.health_url))

    async def _probe(self, session: aiohttp.ClientSession, replica: Replica) -> None:
        assert replica.health_url is not None
        timeout = aiohttp.ClientTimeout(total=min(self._config.health_interval_s, HEALTH_TIMEOUT_S))
        try:
            # The session sends the upstream key with every request: never to a redirect's target.
            async with session.get(
                replica.health_url, timeout=timeout, proxy=replica.proxy, allow_redirects=False
            ) as response:
                await response.read()
                healthy = response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            healthy = False
        if healthy != replica.healthy:
            replica.healthy = healthy
            state = "is healthy again" if healthy else "failed its health check; skipping it"
            log.warning("backend '%s': %s %s", self.name, replica.base_url, state)
            self._wake(len(self._waiters))
