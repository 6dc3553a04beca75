"""Per-backend protection the cascade applies around every call: a circuit breaker, a bounded
number of calls in flight with a bounded queue, and retries with backoff.

- ``CircuitBreaker``: when the share of upstream failures over a sliding window (with a minimum
  number of calls) reaches a rate, the circuit opens and calls are refused at once (the cascade
  moves to the next backend) for ``cooldown_s``; then a few probes are let through (half-open)
  and their success rate closes it or opens it again.
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
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import TypeVar

from hybridgate.backends.base import Backend
from hybridgate.cascade.attempt import Attempt
from hybridgate.config import BackendBase
from hybridgate.errors import BackendError, BackendOverloadedError
from hybridgate.types import ChatRequest, ChatResponse, Json

T = TypeVar("T")


@dataclass(frozen=True)
class BreakerPolicy:
    """When a backend's circuit opens and how it closes again (see ``CircuitBreaker``)."""

    failure_rate: float = 0.5
    min_requests: int = 20
    window_s: float = 10.0
    cooldown_s: float = 30.0
    probes: int = 5

    @classmethod
    def of(cls, config: BackendBase) -> BreakerPolicy:
        return cls(
            config.breaker_failure_rate,
            config.breaker_min_requests,
            config.breaker_window_s,
            config.breaker_cooldown_s,
            config.breaker_probes,
        )


@dataclass(frozen=True)
class Ticket:
    """What a call was admitted as: its outcome counts only for the state that admitted it."""

    generation: int
    probe: bool = False


class CircuitBreaker:
    """A failure-rate breaker over a sliding time window, as Envoy's outlier detection and
    resilience4j do it, so that fast failures finishing before slow successes cannot open it:

    - closed: outcomes of the last ``window_s`` are kept; once there are at least ``min_requests``
      of them and the share of failures reaches ``failure_rate``, the circuit opens.
    - open: calls are refused for ``cooldown_s`` (``before_call(force=True)`` still lets one
      through: the cascade forces the route's last chance, see ``Cascade``).
    - half-open: up to ``probes`` calls go through; when all have answered the circuit closes
      if their failure share is below ``failure_rate``, else it opens for another cooldown.

    Each state change starts a new generation; an outcome counts only for the generation whose
    ``Ticket`` admitted the call, so calls admitted before a change cannot decide the next state.
    """

    def __init__(self, name: str, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures = 0
        self._opened_at: float | None = None
        self._generation = 0
        self._probes_out = 0
        self._probe_failures = 0
        self._probe_results = 0

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self.policy.cooldown_s else "open"

    def before_call(self, force: bool = False) -> Ticket:
        """Admit a call (a ``Ticket`` for its outcome) or raise ``BackendOverloadedError``."""
        state = self.state
        if state == "closed" or force:
            return Ticket(self._generation)
        if state == "half_open" and self._probes_out < self.policy.probes:
            if self._probes_out == 0 and self._probe_results == 0:
                self._generation += 1  # the probes' generation: earlier calls no longer count
            self._probes_out += 1
            return Ticket(self._generation, probe=True)
        retry = self.policy.cooldown_s - (self._clock() - (self._opened_at or 0.0))
        error = BackendOverloadedError(f"backend '{self.name}' is failing; its circuit is open")
        error.retry_after_s = max(retry, 1.0)
        raise error

    def record(self, ticket: Ticket, ok: bool) -> None:
        """Count the outcome of a call admitted with ``ticket``."""
        if ticket.generation != self._generation:
            return
        if ticket.probe:
            self._probe_results += 1
            self._probe_failures += not ok
            if self._probe_results >= self.policy.probes:
                rate = self._probe_failures / self._probe_results
                self._close() if rate < self.policy.failure_rate else self._open()
            return
        if self._opened_at is not None:
            return  # a forced call while open: the probes decide
        now = self._clock()
        self._outcomes.append((now, ok))
        self._failures += not ok
        self._expire(now)
        total = len(self._outcomes)
        if total >= self.policy.min_requests and self._failures / total >= self.policy.failure_rate:
            self._open()

    def release(self, ticket: Ticket) -> None:
        """A call admitted with ``ticket`` ended without an outcome (cancelled, or the request's
        own fault): its probe slot, if it held one, goes to the next call."""
        if ticket.probe and ticket.generation == self._generation:
            self._probes_out -= 1

    def _expire(self, now: float) -> None:
        while self._outcomes and self._outcomes[0][0] <= now - self.policy.window_s:
            self._failures -= not self._outcomes.popleft()[1]

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._reset()

    def _close(self) -> None:
        self._opened_at = None
        self._reset()

    def _reset(self) -> None:
        self._generation += 1
        self._outcomes.clear()
        self._failures = self._probes_out = self._probe_failures = self._probe_results = 0


class Admission:
    def __init__(self, name: str, max_concurrency: int | None, max_queue: int) -> None:
        self.name = name
        self.limit = max_concurrency
        self._semaphore = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.max_queue = max_queue
        self.waiting = 0

    def slot(self) -> AbstractAsyncContextManager[None]:
        """A place among the backend's calls in flight, held for the ``async with`` block. A class,
        not a generator context manager: entered on every upstream call (a few us less each)."""
        return nullcontext() if self._semaphore is None else _Slot(self, self._semaphore)


class _Slot:
    """``Admission.slot`` with a concurrency limit: wait in the queue (or be refused when it is
    full), hold a place, give it back."""

    __slots__ = ("_admission", "_semaphore")

    def __init__(self, admission: Admission, semaphore: asyncio.Semaphore) -> None:
        self._admission = admission
        self._semaphore = semaphore

    async def __aenter__(self) -> None:
        admission = self._admission
        if self._semaphore.locked() and admission.waiting >= admission.max_queue:
            error = BackendOverloadedError(
                f"backend '{admission.name}' is saturated ({admission.limit} in flight, "
                f"{admission.waiting} queued)"
            )
            error.retry_after_s = 1.0
            raise error
        admission.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            admission.waiting -= 1

    async def __aexit__(self, *exc: object) -> None:
        self._semaphore.release()


def backoff_s(attempt: int, base_s: float, retry_after_s: float | None, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (1-based): full jitter over base * 2^(attempt-1)."""
    delay = rng.uniform(0, base_s * 2 ** (attempt - 1))
    return max(delay, retry_after_s or 0.0)


class Protected:
    """A backend behind its breaker, admission limit and retry policy; same calls as a Backend.

    ``force=True`` calls through an open circuit: the cascade passes it for a route's last chance,
    so ejection never leaves a route with no backend to call (its own errors pass through)."""

    def __init__(
        self,
        backend: Backend,
        config: BackendBase,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.breaker = CircuitBreaker(backend.name, BreakerPolicy.of(config), clock)
        self.admission = Admission(backend.name, config.max_concurrency, config.max_queue)
        self._config = config
        self._rng = rng or random.Random()

    async def complete(
        self, request: ChatRequest, model: str, attempts: list[Attempt], force: bool = False
    ) -> ChatResponse:
        """``attempts`` gets a ``retry`` entry for each failed try that is retried."""
        ticket = self.breaker.before_call(force)
        async with self.admission.slot():
            call = lambda: self.backend.complete(request, model)  # noqa: E731
            response = await self._with_retries(ticket, call, attempts)
        self.breaker.record(ticket, True)
        return response

    async def stream(
        self, request: ChatRequest, model: str, attempts: list[Attempt], force: bool = False
    ) -> AsyncGenerator[Json, None]:
        """The outcome counts when the stream ends: a failure mid-stream is a failure."""
        ticket = self.breaker.before_call(force)
        async with self.admission.slot():  # held until the stream ends or the caller closes it
            call = lambda: self._open(request, model)  # noqa: E731
            chunks, first = await self._with_retries(ticket, call, attempts)
            ok = True
            try:
                yield first
                async for chunk in chunks:
                    yield chunk
            except BackendError as exc:
                ok = not exc.retryable
                raise
            finally:
                self.breaker.record(ticket, ok)
                await chunks.aclose()

    async def _open(self, request: ChatRequest, model: str) -> tuple[AsyncGenerator[Json, None], Json]:
        chunks = self.backend.stream(request, model)
        return chunks, await anext(chunks)

    async def _with_retries(
        self, ticket: Ticket, call: Callable[[], Awaitable[T]], attempts: list[Attempt]
    ) -> T:
        """Run ``call``, retrying upstream failures; each failure counts against the breaker."""
        for attempt in range(1, self._config.retries + 2):
            try:
                return await call()
            except BackendError as exc:
                if isinstance(exc, BackendOverloadedError) or not exc.retryable:
                    # full (a replica pool) or the request's own fault: not the upstream failing
                    self.breaker.release(ticket)
                    raise
                self.breaker.record(ticket, False)
                wait = backoff_s(attempt, self._config.retry_backoff_s, exc.retry_after_s, self._rng)
                if (
                    attempt > self._config.retries
                    or wait > self._config.max_retry_wait_s
                    or self.breaker.state != "closed"  # open, or a probe: stop here
                ):
                    raise
                attempts.append(Attempt.retry(self.backend.name, exc))
                await asyncio.sleep(wait)
            except BaseException:
                self.breaker.release(ticket)  # cancelled, or a bug: no outcome to count
                raise
        raise AssertionError("unreachable: the last attempt returns or raises")
