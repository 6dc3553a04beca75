"""RedisLimiter against a real redis-server (tests/redis_server.py) on loopback.

The MemoryLimiter scenarios in test_limits.py run here unchanged against Redis (they are
imported below and collected again with this module's ``limiter`` fixture), the clock is a
FakeClock passed to the limiter, so the windows slide without sleeping. Then what only a shared
store does: two limiters (two replicas) share one key's limits exactly, start-up seeds do not
overwrite live spend, and a Redis outage falls back to per-process limits and recovers. A charge
whose answer comes too late (a proxy on loopback holds Redis's answers back) counts once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from hybridgate.auth.redis_limits import RedisLimiter
from hybridgate.config import RedisConfig
from hybridgate.stores.redis import RedisCircuit, redis_client
from tests.auth import test_limits as same
from tests.auth.clock import FakeClock
from tests.auth.slow_proxy import SlowProxy
from tests.auth.test_limits import KEY, admitted, refusal
from tests.redis_server import RedisServer

MakeLimiter = Callable[[], RedisLimiter]

test_exactly_n_of_n_plus_5_requests_pass_in_a_minute = (
    same.test_exactly_n_of_n_plus_5_requests_pass_in_a_minute
)
test_the_window_slides_and_frees_slots_a_minute_after_use = (
    same.test_the_window_slides_and_frees_slots_a_minute_after_use
)
test_refusal_says_which_limit_its_value_and_when = same.test_refusal_says_which_limit_its_value_and_when
test_tokens_per_minute = same.test_tokens_per_minute
test_daily_budget_stops_within_one_requests_cost = same.test_daily_budget_stops_within_one_requests_cost
test_monthly_budget_holds_across_days_until_the_next_month = (
    same.test_monthly_budget_holds_across_days_until_the_next_month
)
test_budget_refusals_do_not_use_up_request_slots = same.test_budget_refusals_do_not_use_up_request_slots
test_headers_report_limit_remaining_and_reset = same.test_headers_report_limit_remaining_and_reset
test_no_limits_no_headers_and_no_refusals = same.test_no_limits_no_headers_and_no_refusals
test_limits_are_per_key = same.test_limits_are_per_key
test_concurrent_reservations_overshoot_a_budget_by_at_most_one = (
    same.test_concurrent_reservations_overshoot_a_budget_by_at_most_one
)
test_settling_puts_the_real_tokens_in_the_window = same.test_settling_puts_the_real_tokens_in_the_window
test_a_settled_reservation_counts_once = same.test_a_settled_reservation_counts_once


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def replicas(redis_server: RedisServer, clock: FakeClock) -> AsyncIterator[MakeLimiter]:
    """Makes limiters that share one Redis and one fresh key prefix, like replicas of a gateway."""
    # A generous timeout: on a loaded test machine a connect can take longer than the default 0.25 s,
    # and a timeout is an outage (tested below), not what the exactness tests are about.
    config = RedisConfig(url=redis_server.url, key_prefix=f"test-{secrets.token_hex(4)}:", timeout_s=5)
    made: list[RedisLimiter] = []

    def make() -> RedisLimiter:
        made.append(RedisLimiter(redis_client(config, {}), key_prefix=config.key_prefix, clock=clock))
        return made[-1]

    yield make
    for limiter in made:
        await limiter.aclose()


@pytest.fixture
def limiter(replicas: MakeLimiter) -> RedisLimiter:
    return replicas()


async def test_two_replicas_admit_exactly_n_together(replicas: MakeLimiter) -> None:
    first, second = replicas(), replicas()
    key = replace(KEY, rpm=10)
    results = await asyncio.gather(*(admitted(first if i % 2 else second, key) for i in range(30)))
    assert sum(results) == 10
    error = await refusal(first, key)
    assert error.limit == "requests" and error.headers["x-ratelimit-remaining-requests"] == "0"


async def test_spend_on_one_replica_counts_on_the_other(replicas: MakeLimiter) -> None:
    first, second = replicas(), replicas()
    key = replace(KEY, budget_usd_day=1.0)
    await first.charge(key.key_id, 0.6, 100)
    assert await admitted(second, key)
    await second.charge(key.key_id, 0.6, 100)
    assert (await refusal(first, key)).limit == "budget_day"
    assert "$1.2000 spent of $1.0000" in (await refusal(second, key)).message


async def test_a_seed_never_lowers_live_spend(replicas: MakeLimiter) -> None:
    first, second = replicas(), replicas()
    key = replace(KEY, budget_usd_day=1.0, budget_usd_month=10.0)
    await first.seed_spend(key.key_id, day_usd=0.5, month_usd=3.0)
    await first.charge(key.key_id, 0.3, 10)
    # A second replica starting later, from a ledger that saw less, must not undo the charge.
    await second.seed_spend(key.key_id, day_usd=0.0, month_usd=0.0)
    assert await admitted(second, key)
    await second.charge(key.key_id, 0.25, 10)
    error = await refusal(first, key)
    assert error.limit == "budget_day" and "$1.0500 spent" in error.message


async def test_redis_outage_falls_back_to_local_limits_and_recovers(
    redis_server: RedisServer, limiter: RedisLimiter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    key = replace(KEY, rpm=3, budget_usd_day=1.0)
    await limiter.charge(key.key_id, 0.7, 10)
    assert await admitted(limiter, key)  # reads the shared spend: $0.70
    assert limiter.degraded_reason() is None
    redis_server.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="hybridgate.auth"):
            # Local limits now: a fresh minute window of 3, and the budget from the last read.
            assert [await admitted(limiter, key) for _ in range(4)] == [True, True, True, False]
            await limiter.charge(key.key_id, 0.4, 10)
            assert await limiter.headers(key) != {}
        reason = limiter.degraded_reason()
        assert reason is not None and "redis unreachable" in reason
        assert len([r for r in caplog.records if "fall back" in r.message]) == 1
        clock.advance(61)
        assert (await refusal(limiter, key)).limit == "budget_day"  # $0.70 + $0.40 locally
    finally:
        redis_server.start()  # empty: it kept nothing
    clock.advance(1)  # past the retry interval: the next call tries Redis again, only that one
    assert await asyncio.gather(*(admitted(limiter, key) for _ in range(5))) == [False] * 5
    assert (await refusal(limiter, key)).limit == "budget_day"  # spend written back, once
    assert limiter.degraded_reason() is None
    check = Redis.from_url(redis_server.url)
    try:
        keys = await check.keys("*spend*")  # the restarted server holds only this test's keys
        assert [float(value or 0) for value in await check.mget(keys)] == pytest.approx([1.1, 1.1])
    finally:
        await check.aclose()


async def test_a_redis_that_restarted_empty_gets_the_spend_back(
    redis_server: RedisServer, limiter: RedisLimiter, clock: FakeClock
) -> None:
    key = replace(KEY, budget_usd_day=1.0)
    await limiter.charge(key.key_id, 0.9, 10)
    assert await admitted(limiter, key)  # reads $0.90
    redis_server.stop()
    redis_server.start()  # so quickly that no call saw it down: only the spend going back tells
    await limiter.charge(key.key_id, 0.05, 10)
    assert await admitted(limiter, key)  # reads $0.05 < $0.90: puts $0.90 back
    await limiter.charge(key.key_id, 0.15, 10)
    assert (await refusal(limiter, key)).limit == "budget_day"  # $0.90 + $0.15 >= $1
    assert limiter.degraded_reason() is None


async def _spend(redis_server: RedisServer, key_id: str) -> list[float]:
    check = Redis.from_url(redis_server.url)
    try:
        keys = sorted(await check.keys(f"*spend:{{{key_id}}}:*"))  # the month's key, then the day's
        return [float(value or 0) for value in await check.mget(keys)]
    finally:
        await check.aclose()


async def test_a_charge_redis_applied_but_answered_too_late_counts_once(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    key_id = secrets.token_hex(4)
    async with SlowProxy(redis_server.port).running() as proxy:
        prefix = f"test-{secrets.token_hex(4)}:"
        config = RedisConfig(url=f"redis://127.0.0.1:{proxy.port}/0", key_prefix=prefix, timeout_s=0.5)
        circuit = RedisCircuit()
        limiter = RedisLimiter(redis_client(config, {}, circuit), key_prefix=prefix, clock=clock)
        try:
            await limiter.charge(key_id, 1.0, 100)
            proxy.delay_s = 2.0  # Redis applies the next charge; its answer arrives after the timeout
            await limiter.charge(key_id, 1.0, 100)
            reason = limiter.degraded_reason()
            assert reason is not None and "TimeoutError" in reason
            proxy.delay_s = 0.0
            clock.advance(2)  # past the retry interval: this call starts the circuit's probe
            await limiter.charge(key_id, 0.0, 0)
            deadline = time.monotonic() + 10
            while circuit.reason is not None:  # the probe's PING answers in the background
                assert time.monotonic() < deadline, circuit.reason
                await asyncio.sleep(0.01)
            clock.advance(2)  # the next call writes the late charge back
            await limiter.charge(key_id, 0.0, 0)
            assert limiter.degraded_reason() is None
        finally:
            await limiter.aclose()
    # Before charge ids: the client re-sent the MULTI/EXEC on the timeout and wrote it back too.
    assert await _spend(redis_server, key_id) == pytest.approx([2.0, 2.0])
    check = Redis.from_url(redis_server.url)
    try:
        assert await check.get(f"{prefix}limits:{{{key_id}}}:tokens-total") == b"200"
    finally:
        await check.aclose()


async def test_charges_made_while_spend_is_written_back_are_written_too(
    redis_server: RedisServer, limiter: RedisLimiter, clock: FakeClock
) -> None:
    key_id = secrets.token_hex(4)
    await limiter.charge(key_id, 0.1, 10)
    redis_server.stop()
    try:
        await limiter.charge(key_id, 0.1, 10)  # sent to a dead Redis: an outage
        assert limiter.degraded_reason() is not None
    finally:
        redis_server.start()  # empty
    clock.advance(2)
    # The first call probes Redis and writes back; the others charge locally meanwhile.
    await asyncio.gather(*(limiter.charge(key_id, 0.1, 10) for _ in range(6)))
    assert limiter.degraded_reason() is None
    # $0.70 since the restart (the $0.10 before it was never read back, so it is lost).
    assert await _spend(redis_server, key_id) == pytest.approx([0.7, 0.7])


async def test_the_token_set_stays_a_minute_long_for_a_key_without_tpm(
    redis_server: RedisServer, limiter: RedisLimiter, clock: FakeClock
) -> None:
    # No tpm: no check reads the token set, which only the charges themselves can trim.
    key = replace(KEY, key_id=secrets.token_hex(4), rpm=1000)
    for _ in range(100):
        await limiter.check(key)
        await limiter.charge(key.key_id, 0.001, 50)
        clock.advance(5)
    check = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        [name] = await check.keys(f"*limits:{{{key.key_id}}}:tokens")
        tokens = name if isinstance(name, str) else name.decode()
        assert await check.zcard(tokens) == 12  # one charge every 5 s: the last minute's
        assert await check.get(f"{tokens}-total") == str(12 * 50)
    finally:
        await check.aclose()
