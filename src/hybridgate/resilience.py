"""Per-backend protection the cascade applies around every call: a circuit breaker, a bounded
number of calls in flight with a bounded queue, and retries with backoff.

- ``CircuitBreaker``: after ``failures`` consecutive upstream failures the circuit opens and calls
  are refused at once (the cascade moves to the next backend) for ``cooldown_s``; then one probe
  is let through (half-open): success closes the circuit, failure opens it again.
- ``Admission``: at most ``max_concurrency`` calls in flight and ``max_queue`` waiting; past that
  a call is refused with ``BackendOverloadedError`` instead of queueing without bound, so the
  cascade spills over to the next tier (or the caller gets a 503 with Retry-After).
- ``backoff_s``: exponential backoff with full jitter, never shorter than the upstream's own
  Retry-After.

Pure asyncio bookkeeping: no I/O of its own. The clock and random source are injectable.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from hybridgate.backends.base import Backend
from hybridgate.config import BackendBase
from hybridgate.errors import BackendError, BackendOverloadedError
from hybridgate.types import ChatRequest, ChatResponse, Json

T = TypeVar("T")


class CircuitBreaker:
    def __init__(
        self, name: str, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self.name = name
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self._cooldown_s else "open"

    def before_call(self) -> None:
        state = self.state
        if state == "open" or (state == "half_open" and self._probing):
            retry = self._cooldown_s - (self._clock() - (self._opened_at or 0.0))
            error = BackendOverloadedError(f"backend '{self.name}' is failing; its circuit is open")
            error.retry_after_s = max(retry, 1.0)
            raise error
        if state == "half_open":
            self._probing = True

    def record_success(self) -> None:
        self._failures, self._opened_at, self._probing = 0, None, False

    def record_failure(self) -> None:
        self._failures += 1
        self._probing = False
        if self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()


class Admission:
    def __init__(self, name: str, max_concurrency: int | None, max_queue: int) -> None:
        self.name = name
        self._limit = max_concurrency
        self._semaphore = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._max_queue = max_queue
        self.waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._semaphore is None:
            yield
            return
        if self._semaphore.locked() and self.waiting >= self._max_queue:
            error = BackendOverloadedError(
                f"backend '{self.name}' is saturated ({self._limit} in flight, {self.waiting} queued)"
            )
            error.retry_after_s = 1.0
            raise error
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._semaphore.release()


def backoff_s(attempt: int, base_s: float, retry_after_s: float | None, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (1-based): full jitter over base * 2^(attempt-1)."""
    delay = rng.uniform(0, base_s * 2 ** (attempt - 1))
    return max(delay, retry_after_s or 0.0)


class Protected:
    """A backend behind its breaker, admission limit and retry policy; same calls as a Backend."""

    def __init__(self, backend: Backend, config: BackendBase, rng: random.Random | None = None) -> None:
        self.backend = backend
        self.breaker = CircuitBreaker(backend.name, config.breaker_failures, config.breaker_cooldown_s)
        self.admission = Admission(backend.name, config.max_concurrency, config.max_queue)
        self._config = config
        self._rng = rng or random.Random()

    async def complete(self, request: ChatRequest, model: str, attempts: list[str]) -> ChatResponse:
        """``attempts`` gets a ``backend:retry:<type>`` entry for each failed try that is retried."""
        self.breaker.before_call()
        async with self.admission.slot():
            return await self._with_retries(lambda: self.backend.complete(request, model), attempts)

    async def stream(
        self, request: ChatRequest, model: str, attempts: list[str]
    ) -> AsyncGenerator[Json, None]:
        self.breaker.before_call()
        async with self.admission.slot():  # held until the stream ends or the caller closes it
            chunks, first = await self._with_retries(lambda: self._open(request, model), attempts)
            yield first
            try:
                async for chunk in chunks:
                    yield chunk
            except BackendError as exc:
                if exc.retryable:
                    self.breaker.record_failure()
                raise
            finally:
                await chunks.aclose()

    async def _open(self, request: ChatRequest, model: str) -> tuple[AsyncGenerator[Json, None], Json]:
        chunks = self.backend.stream(request, model)
        return chunks, await anext(chunks)

    async def _with_retries(self, call: Callable[[], Awaitable[T]], attempts: list[str]) -> T:
        for attempt in range(1, self._config.retries + 2):
            try:
                result = await call()
            except BackendOverloadedError:
                raise  # full (a replica pool), not failing: spill over at once, leave the breaker be
            except BackendError as exc:
                if exc.retryable:
                    self.breaker.record_failure()
                wait = backoff_s(attempt, self._config.retry_backoff_s, exc.retry_after_s, self._rng)
                if (
                    not exc.retryable
                    or attempt > self._config.retries
                    or wait > self._config.max_retry_wait_s
                    or self.breaker.state != "closed"  # this failure opened it: stop here
                ):
                    raise
                attempts.append(f"{self.backend.name}:retry:{exc.type}")
                await asyncio.sleep(wait)
                continue
            self.breaker.record_success()
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")
