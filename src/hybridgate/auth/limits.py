"""Rate limits and budgets per virtual key: admit a request, reserve its worst case, settle.

Sits at the HTTP edge beside ``keys``: ``api/`` awaits ``check(key)`` after verifying the key
and before the pipeline, adds ``headers(key)`` to the response; the pipeline, once it knows
which backends may answer and the request missed the cache, awaits ``reserve(key, usd, tokens)``
with the request's worst case, and ``settle(reservation, cost_usd, tokens)`` when its cost is
known. It must not block, do I/O or import anything above ``hybridgate.errors``.

Semantics, the same for any implementation:
- requests per minute: exact over a sliding 60 s window; a key limited to N gets exactly N
  admissions in any 60 s. ``check`` counts the request when it admits it.
- tokens per minute and USD per UTC day / month: what counts is what was charged plus what is
  reserved by requests still running. ``reserve`` admits a request while that is below the limit
  and adds the request's worst case at once (atomically), so however many requests run at once
  the total overshoots the limit by at most one reservation; ``settle`` replaces the reservation
  with the real cost and tokens (a reservation made on one day settles on that day).
- a refusal is a ``LimitExceededError`` (a ``RateLimitError``, 429) naming the limit, its value
  and when it resets, with ``retry_after_s`` and the headers to send.

``MemoryLimiter`` counts per process: with ``--workers W`` each worker allows the full limit.
``redis_limits.RedisLimiter`` (``[auth] limits_store = "redis"``) shares the counts between
replicas: the request and token windows are a sorted set per key updated by one Lua script
(ZREMRANGEBYSCORE key -inf now-60; ZCARD/ZRANGE to sum; ZADD when admitted; PEXPIRE); spend is
INCRBYFLOAT on ``spend:{key}:{YYYY-MM-DD}`` and ``spend:{key}:{YYYY-MM}``, expiring after the
period ends; ``seed_spend`` raises the spend to at least its value (see its docstring).
The budget, window and header helpers below word refusals the same for both.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from hybridgate.auth.records import KeyRecord
from hybridgate.auth.windows import (
    PeriodSpend,
    SlidingWindow,
    day_of,
    format_duration,
    month_of,
    next_day,
    next_month,
)
from hybridgate.errors import LimitExceededError, LimitName


class Limiter(Protocol):
    async def check(self, key: KeyRecord) -> None:
        """Admit one request for ``key`` (and count it) or raise LimitExceededError."""

    async def charge(self, key_id: str, cost_usd: float, tokens: int) -> None:
        """Record what a finished request cost; call it for failed requests that cost too."""

    async def reserve(self, key: KeyRecord, usd: float, tokens: int) -> Reservation:
        """Hold a request's worst-case cost and tokens, or raise LimitExceededError."""

    async def settle(self, reservation: Reservation, cost_usd: float, tokens: int) -> None:
        """Replace a reservation with what the request really cost (at most once per id)."""

    async def headers(self, key: KeyRecord) -> dict[str, str]:
        """``x-ratelimit-*`` response headers for the key's per-minute limits (none if unset)."""

    async def seed_spend(self, key_id: str, day_usd: float, month_usd: float) -> None:
        """Set the key's spend so far this UTC day and month (at start-up, from the ledger)."""

    async def aclose(self) -> None:
        """Release connections (the gateway's shutdown)."""

    def degraded_reason(self) -> str | None:
        """Why limits are only per process right now (shared store unreachable), else None."""


@dataclass(frozen=True)
class Reservation:
    """A request's worst case, held against its key's budgets and token window until settled."""

    reservation_id: str
    key_id: str
    usd: float
    tokens: int
    at: float  # Unix seconds: the day, month and window entry it counts in
    shared: bool = False  # held in Redis (else in this process)


@dataclass
class _KeyState:
    requests: SlidingWindow = field(default_factory=SlidingWindow)
    tokens: SlidingWindow = field(default_factory=SlidingWindow)
    day: PeriodSpend = field(default_factory=lambda: PeriodSpend(day_of))
    month: PeriodSpend = field(default_factory=lambda: PeriodSpend(month_of))


class MemoryLimiter:
    """The ``Limiter`` for one process. ``clock`` returns Unix seconds (tests pass a fake one)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._states: dict[str, _KeyState] = {}

    def __len__(self) -> int:
        """How many keys have counts here: only keys that were verified (the edge's rule)."""
        return len(self._states)

    async def check(self, key: KeyRecord) -> None:
        now = self._clock()
        state = self._state(key.key_id)
        # Budgets and tokens first: a refusal there must not use up a request slot.
        self._check_budget(key, state.month, key.budget_usd_month, "budget_month", now)
        self._check_budget(key, state.day, key.budget_usd_day, "budget_day", now)
        self._check_window(key, state, state.tokens, key.tpm, "tokens", now)
        self._check_window(key, state, state.requests, key.rpm, "requests", now)
        if key.rpm is not None:
            state.requests.add(now, 1)

    async def charge(self, key_id: str, cost_usd: float, tokens: int) -> None:
        now = self._clock()
        state = self._state(key_id)
        if tokens > 0:
            state.tokens.add(now, tokens)
        if cost_usd > 0:
            state.day.add(now, cost_usd)
            state.month.add(now, cost_usd)

    async def reserve(self, key: KeyRecord, usd: float, tokens: int) -> Reservation:
        now = self._clock()
        state = self._state(key.key_id)
        self._check_budget(key, state.month, key.budget_usd_month, "budget_month", now)
        self._check_budget(key, state.day, key.budget_usd_day, "budget_day", now)
        self._check_window(key, state, state.tokens, key.tpm, "tokens", now)
        if tokens > 0:
            state.tokens.add(now, tokens)
        state.day.add(now, usd)
        state.month.add(now, usd)
        return Reservation(secrets.token_hex(8), key.key_id, usd, tokens, now)

    async def settle(self, reservation: Reservation, cost_usd: float, tokens: int) -> None:
        state = self._state(reservation.key_id)
        at = reservation.at
        if reservation.tokens > 0:
            state.tokens.amend(at, reservation.tokens, tokens)  # gone from the window: nothing left
        elif tokens > 0:
            state.tokens.add(self._clock(), tokens)
        state.day.adjust(at, cost_usd - reservation.usd)
        state.month.adjust(at, cost_usd - reservation.usd)

    async def headers(self, key: KeyRecord) -> dict[str, str]:
        return self._headers(key, self._state(key.key_id), self._clock())

    async def seed_spend(self, key_id: str, day_usd: float, month_usd: float) -> None:
        now = self._clock()
        state = self._state(key_id)
        state.day.set(now, day_usd)
        state.month.set(now, month_usd)

    def _state(self, key_id: str) -> _KeyState:
        if (state := self._states.get(key_id)) is None:
            state = self._states[key_id] = _KeyState()
        return state

    def _check_budget(
        self, key: KeyRecord, spend: PeriodSpend, budget: float | None, limit: LimitName, now: float
    ) -> None:
        if budget is None or (spent := spend.usd(now)) < budget:
            return
        raise budget_error(key, limit, spent, budget, now, self._headers(key, self._state(key.key_id), now))

    def _check_window(
        self,
        key: KeyRecord,
        state: _KeyState,
        window: SlidingWindow,
        limit: int | None,
        name: LimitName,
        now: float,
    ) -> None:
        if limit is None or window.total(now) < limit:
            return
        raise window_error(key, name, limit, window.wait_s(limit, now), self._headers(key, state, now))

    def _headers(self, key: KeyRecord, state: _KeyState, now: float) -> dict[str, str]:
        return rate_headers(
            key,
            (state.requests.total(now), state.requests.reset_s(now)),
            (state.tokens.total(now), state.tokens.reset_s(now)),
        )

    async def aclose(self) -> None:
        """Nothing to release: the counts live in this process."""

    def degraded_reason(self) -> str | None:
        """Always None: an in-process limiter cannot lose its store."""
        return None


def budget_error(
    key: KeyRecord, limit: LimitName, spent: float, budget: float, now: float, headers: dict[str, str]
) -> LimitExceededError:
    """The refusal for a spent daily or monthly budget (any limiter)."""
    daily = limit == "budget_day"
    resets = next_day(now) if daily else next_month(now)
    wait = resets.timestamp() - now
    return LimitExceededError(
        f"{'daily' if daily else 'monthly'} budget of API key {key.key_id} is used up: "
        f"${spent:.4f} spent of ${budget:.4f} this {'UTC day' if daily else 'UTC month'}; "
        f"it resets at {_utc(resets)}, in {format_duration(wait)}",
        limit=limit,
        retry_after_s=wait,
        headers=headers,
    )


def window_error(
    key: KeyRecord, name: LimitName, limit: int, wait_s: float, headers: dict[str, str]
) -> LimitExceededError:
    """The refusal for a full per-minute window (any limiter)."""
    return LimitExceededError(
        f"rate limit of API key {key.key_id} reached: {limit} {name} per minute "
        f"(counted over the last 60 s); retry in {format_duration(wait_s)}",
        limit=name,
        retry_after_s=wait_s,
        headers=headers,
    )


def rate_headers(key: KeyRecord, requests: tuple[int, float], tokens: tuple[int, float]) -> dict[str, str]:
    """``x-ratelimit-*`` headers from each window's (total, seconds until it empties)."""
    headers: dict[str, str] = {}
    for name, (total, reset_s), limit in (("requests", requests, key.rpm), ("tokens", tokens, key.tpm)):
        if limit is not None:
            headers[f"x-ratelimit-limit-{name}"] = str(limit)
            headers[f"x-ratelimit-remaining-{name}"] = str(max(0, limit - total))
            headers[f"x-ratelimit-reset-{name}"] = format_duration(reset_s)
    return headers


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
