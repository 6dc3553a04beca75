"""MemoryLimiter: exact requests per minute, tokens per minute, daily and monthly USD budgets.

The clock is a FakeClock moved by hand, so every window boundary is tested without sleeping.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from hybridgate.auth.limits import Limiter, MemoryLimiter, Reservation
from hybridgate.auth.records import KeyRecord
from hybridgate.errors import LimitExceededError, RateLimitError
from tests.auth.clock import NOON, FakeClock

KEY = KeyRecord(key_id="abcd1234", name="app1", environment="prod", created_at=NOON)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> MemoryLimiter:
    return MemoryLimiter(clock)


async def admitted(limiter: Limiter, key: KeyRecord) -> bool:
    try:
        await limiter.check(key)
    except LimitExceededError:
        return False
    return True


async def refusal(limiter: Limiter, key: KeyRecord) -> LimitExceededError:
    with pytest.raises(LimitExceededError) as caught:
        await limiter.check(key)
    return caught.value


async def test_exactly_n_of_n_plus_5_requests_pass_in_a_minute(
    limiter: MemoryLimiter, clock: FakeClock
) -> None:
    key = replace(KEY, rpm=10)
    results = []
    for _ in range(15):
        results.append(await admitted(limiter, key))
        clock.advance(3.9)  # 15 requests spread over 58.5 s: all inside one minute
    assert results == [True] * 10 + [False] * 5


async def test_the_window_slides_and_frees_slots_a_minute_after_use(
    limiter: MemoryLimiter, clock: FakeClock
) -> None:
    key = replace(KEY, rpm=3)
    for _ in range(3):
        assert await admitted(limiter, key)
        clock.advance(10)
    error = await refusal(limiter, key)  # at t=30 the first request (t=0) frees its slot at t=60
    assert error.retry_after_s == pytest.approx(30)
    clock.advance(29.9)
    assert not await admitted(limiter, key)
    clock.advance(0.1)
    assert await admitted(limiter, key)
    assert not await admitted(limiter, key)  # the t=10 request is still counted
    clock.advance(60)
    assert [await admitted(limiter, key) for _ in range(4)] == [True, True, True, False]


async def test_refusal_says_which_limit_its_value_and_when(limiter: MemoryLimiter) -> None:
    key = replace(KEY, rpm=2)
    await limiter.check(key)
    await limiter.check(key)
    error = await refusal(limiter, key)
    assert isinstance(error, RateLimitError) and error.status_code == 429
    assert error.limit == "requests" and error.code == "rate_limit_exceeded"
    assert "abcd1234" in error.message and "2 requests per minute" in error.message
    assert "retry in 1m0s" in error.message
    assert error.headers["retry-after"] == "60"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"


async def test_tokens_per_minute(limiter: MemoryLimiter, clock: FakeClock) -> None:
    key = replace(KEY, tpm=100)
    await limiter.check(key)
    await limiter.charge(key.key_id, 0.0, 60)
    clock.advance(20)
    await limiter.check(key)  # 60 < 100: admitted, and may overshoot
    await limiter.charge(key.key_id, 0.0, 60)
    error = await refusal(limiter, key)
    assert error.limit == "tokens" and "100 tokens per minute" in error.message
    assert error.retry_after_s == pytest.approx(40)  # dropping the first 60 tokens gets under 100
    clock.advance(40)
    assert await admitted(limiter, key)


async def test_daily_budget_stops_within_one_requests_cost(limiter: MemoryLimiter, clock: FakeClock) -> None:
    key = replace(KEY, budget_usd_day=1.0)
    cost, passed, spent = 0.3, 0, 0.0
    for _ in range(10):
        if not await admitted(limiter, key):
            break
        passed += 1
        spent += cost
        await limiter.charge(key.key_id, cost, 10)
    assert passed == 4
    assert 1.0 <= spent < 1.0 + cost
    error = await refusal(limiter, key)
    assert error.limit == "budget_day" and error.code == "insufficient_quota"
    assert "daily budget" in error.message and "$1.0000" in error.message
    assert "resets at 2025-03-15 00:00 UTC, in 12h0m0s" in error.message
    assert error.retry_after_s == pytest.approx(12 * 3600)
    clock.advance(12 * 3600)
    assert await admitted(limiter, key)


async def test_monthly_budget_holds_across_days_until_the_next_month(
    limiter: MemoryLimiter, clock: FakeClock
) -> None:
    key = replace(KEY, budget_usd_month=2.0, budget_usd_day=5.0)
    await limiter.charge(key.key_id, 2.5, 0)
    error = await refusal(limiter, key)
    assert error.limit == "budget_month"
    first_of_april = datetime(2025, 4, 1, tzinfo=UTC).timestamp()
    assert error.retry_after_s == pytest.approx(first_of_april - clock.now)
    clock.advance(86_400)
    assert not await admitted(limiter, key)
    clock.now = first_of_april
    assert await admitted(limiter, key)


async def test_seeded_spend_counts(limiter: MemoryLimiter) -> None:
    key = replace(KEY, budget_usd_day=1.0, budget_usd_month=10.0)
    await limiter.seed_spend(key.key_id, day_usd=0.99, month_usd=3.0)
    assert await admitted(limiter, key)
    await limiter.charge(key.key_id, 0.02, 5)
    assert (await refusal(limiter, key)).limit == "budget_day"
    await limiter.seed_spend(key.key_id, day_usd=0.0, month_usd=10.0)
    assert (await refusal(limiter, key)).limit == "budget_month"


async def test_budget_refusals_do_not_use_up_request_slots(limiter: MemoryLimiter, clock: FakeClock) -> None:
    key = replace(KEY, rpm=2, budget_usd_day=1.0)
    await limiter.seed_spend(key.key_id, day_usd=1.0, month_usd=1.0)
    for _ in range(5):
        assert (await refusal(limiter, key)).limit == "budget_day"
    clock.advance(12 * 3600)  # next UTC day, same minute-window state
    assert [await admitted(limiter, key) for _ in range(3)] == [True, True, False]


async def test_headers_report_limit_remaining_and_reset(limiter: MemoryLimiter, clock: FakeClock) -> None:
    key = replace(KEY, rpm=10, tpm=1000)
    assert await limiter.headers(key) == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "10",
        "x-ratelimit-reset-requests": "0ms",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "1000",
        "x-ratelimit-reset-tokens": "0ms",
    }
    for _ in range(3):
        await limiter.check(key)
        await limiter.charge(key.key_id, 0.001, 150)
        clock.advance(1)
    headers = await limiter.headers(key)
    assert headers["x-ratelimit-remaining-requests"] == "7"
    assert headers["x-ratelimit-reset-requests"] == "59s"  # the newest request leaves at t=62
    assert headers["x-ratelimit-remaining-tokens"] == "550"
    clock.advance(0.5)
    assert (await limiter.headers(key))["x-ratelimit-reset-tokens"] == "58.5s"


async def test_no_limits_no_headers_and_no_refusals(limiter: MemoryLimiter) -> None:
    for _ in range(1000):
        await limiter.check(KEY)
        await limiter.charge(KEY.key_id, 5.0, 10_000)
    assert await limiter.headers(KEY) == {}


async def test_limits_are_per_key(limiter: MemoryLimiter) -> None:
    first, second = replace(KEY, rpm=1), replace(KEY, key_id="other123", rpm=1)
    assert await admitted(limiter, first)
    assert not await admitted(limiter, first)
    assert await admitted(limiter, second)


async def test_concurrent_reservations_overshoot_a_budget_by_at_most_one(limiter: Limiter) -> None:
    """100 requests admitted at once, each reserving its worst case ($0.3) against a $1 budget:
    only as many as the budget holds (plus the one that crosses it) are admitted, and once they
    settle at their real cost ($0.1) the budget has room again."""
    key = replace(KEY, budget_usd_day=1.0)

    async def reserve() -> Reservation | None:
        try:
            return await limiter.reserve(key, 0.3, 100)
        except LimitExceededError:
            return None

    held = [r for r in await asyncio.gather(*(reserve() for _ in range(100))) if r is not None]
    assert len(held) == 4  # 0.9 < 1.0 admits the fourth, which crosses the budget by < 0.3
    assert await refusal(limiter, key)
    for reservation in held:
        await limiter.settle(reservation, 0.1, 30)
    assert await admitted(limiter, key)  # $0.4 spent: room again


async def test_settling_puts_the_real_tokens_in_the_window(limiter: Limiter, clock: FakeClock) -> None:
    key = replace(KEY, tpm=1000)
    reservation = await limiter.reserve(key, 0.0, 1000)  # the worst case fills the minute
    with pytest.raises(LimitExceededError, match="tokens"):
        await limiter.reserve(key, 0.0, 10)
    clock.advance(1)
    await limiter.settle(reservation, 0.0, 200)
    assert await limiter.reserve(key, 0.0, 10)
    clock.advance(59.5)  # the settled tokens keep the reservation's time: gone at 60 s after it
    assert (await limiter.headers(key))["x-ratelimit-remaining-tokens"] == "990"


async def test_a_settled_reservation_counts_once(limiter: Limiter) -> None:
    key = replace(KEY, budget_usd_day=1.0)
    reservation = await limiter.reserve(key, 0.5, 0)
    await limiter.settle(reservation, 0.6, 0)
    if isinstance(limiter, MemoryLimiter):
        return  # settling twice is a Redis retry's concern: the script applies an id once
    await limiter.settle(reservation, 0.6, 0)
    assert await limiter.reserve(key, 0.3, 0)  # $0.6 spent, not $1.2
    assert await limiter.reserve(key, 0.3, 0)  # 0.9 committed: still below
    with pytest.raises(LimitExceededError):
        await limiter.reserve(key, 0.3, 0)  # 1.2 committed
