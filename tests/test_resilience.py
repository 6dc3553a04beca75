"""Breakers, admission limits and retries: unit tests with an injected clock, then end to end
through the SDK against OpenAI-compatible stand-ins on loopback (not OpenAI)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from hybridgate.app import create_app
from hybridgate.cascade.resilience import Admission, BreakerPolicy, CircuitBreaker, backoff_s
from hybridgate.config import GatewayConfig
from hybridgate.errors import BackendOverloadedError
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import Fail, OpenAIStandIn, run_openai_standin


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


POLICY = BreakerPolicy(failure_rate=0.5, min_requests=10, window_s=10, cooldown_s=30, probes=3)


def test_breaker_opens_on_a_failure_rate_once_the_window_holds_enough_calls() -> None:
    clock = Clock()
    breaker = CircuitBreaker("b", POLICY, clock)
    for _ in range(9):
        breaker.record(breaker.before_call(), False)
    assert breaker.state == "closed"  # 9 of 9 failed, but 9 calls are too few to judge
    breaker.record(breaker.before_call(), False)
    assert breaker.state == "open"
    with pytest.raises(BackendOverloadedError) as err:
        breaker.before_call()
    assert err.value.retry_after_s == pytest.approx(30)


def test_a_streak_of_failures_at_a_low_rate_never_opens_the_breaker() -> None:
    """What concurrency does to completion order: fast failures land together. 20% failures in
    runs of five (the old breaker opened on five in a row) leave the default breaker closed."""
    clock = Clock()
    breaker = CircuitBreaker("b", BreakerPolicy(), clock)
    for outcome in ([False] * 5 + [True] * 20) * 8:
        breaker.record(breaker.before_call(), outcome)
        clock.now += 0.05
        assert breaker.state == "closed"


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    breaker = CircuitBreaker("b", POLICY, clock)
    for _ in range(9):
        breaker.record(breaker.before_call(), False)
    clock.now = 11
    breaker.record(breaker.before_call(), False)
    assert breaker.state == "closed"


def test_half_open_lets_several_probes_through_and_closes_on_their_success_rate() -> None:
    clock = Clock()
    breaker = CircuitBreaker("b", POLICY, clock)
    for _ in range(10):
        breaker.record(breaker.before_call(), False)
    clock.now = 31
    probes = [breaker.before_call() for _ in range(3)]
    assert breaker.state == "half_open"
    with pytest.raises(BackendOverloadedError):
        breaker.before_call()  # three probes at most
    breaker.record(probes[0], False)
    breaker.record(probes[1], True)
    breaker.record(probes[2], True)
    assert breaker.state == "closed"  # one failure in three is below the rate


def test_failed_probes_open_the_circuit_again_and_stale_calls_do_not_decide() -> None:
    clock = Clock()
    breaker = CircuitBreaker("b", POLICY, clock)
    stale = breaker.before_call()  # admitted while closed, answers only after the cooldown
    for _ in range(10):
        breaker.record(breaker.before_call(), False)
    clock.now = 31
    probes = [breaker.before_call() for _ in range(3)]
    breaker.record(stale, True)  # not a probe: does not count towards closing
    breaker.record(probes[0], True)
    breaker.release(probes[1])  # cancelled: its slot goes to another probe
    probes[1] = breaker.before_call()
    breaker.record(probes[1], False)
    assert breaker.state == "half_open"
    breaker.record(probes[2], False)
    assert breaker.state == "open"  # two failures in three
    assert breaker.before_call(force=True).probe is False  # the route's last chance still goes


async def test_admission_bounds_in_flight_and_queue() -> None:
    admission = Admission("b", max_concurrency=1, max_queue=1)
    release = asyncio.Event()

    async def hold() -> None:
        async with admission.slot():
            await release.wait()

    first = asyncio.create_task(hold())
    await asyncio.sleep(0)
    second = asyncio.create_task(hold())  # queued
    await asyncio.sleep(0)
    with pytest.raises(BackendOverloadedError, match="saturated"):
        async with admission.slot():
            pass
    release.set()
    await asyncio.gather(first, second)
    async with admission.slot():  # free again
        pass


def test_backoff_grows_and_honours_retry_after() -> None:
    rng = random.Random(7)
    assert all(0 <= backoff_s(1, 0.2, None, rng) <= 0.2 for _ in range(50))
    assert max(backoff_s(4, 0.2, None, rng) for _ in range(200)) > 0.8
    assert backoff_s(1, 0.2, 3.0, rng) == 3.0


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, Gateway, OpenAIStandIn]]:
    ledger = tmp_path_factory.mktemp("resilience") / "gw.db"
    with run_openai_standin() as flaky, run_openai_standin() as backup:
        remote = {"type": "openai_compat", "model": "m", "timeout_s": 5}
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(ledger)},
                "backends": {
                    "flaky": {
                        **remote,
                        "base_url": flaky.base_url,
                        "retries": 1,
                        "retry_backoff_s": 0.01,
                        "breaker_min_requests": 4,
                        "breaker_cooldown_s": 60,
                    },
                    "backup": {**remote, "base_url": backup.base_url},
                },
                "routes": {"auto": {"try": ["flaky", "backup"]}, "alone": {"try": ["flaky"]}},
            }
        )
        app = create_app(config, env={})
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            yield client, app.state.gateway, flaky


def last_attempts(gateway: Gateway) -> Any:
    gateway.ledger.flush()
    return gateway.ledger.recent(1)[0]["attempts"]


def test_retry_then_breaker_then_spill_over(rig: tuple[openai.OpenAI, Gateway, OpenAIStandIn]) -> None:
    client, gateway, flaky = rig
    hi: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    flaky.script(Fail(status=500, type="server_error"))
    client.chat.completions.create(model="auto", messages=hi)
    assert last_attempts(gateway) == ["flaky:retry:server_error", "flaky:ok"]  # retried, same backend
    flaky.script(*[Fail(status=500, type="server_error")] * 2)
    client.chat.completions.create(model="auto", messages=hi)
    # 3 failures in 4 calls: the circuit opens at the retry's failure, so no further retry
    assert last_attempts(gateway) == ["flaky:retry:server_error", "flaky:error:server_error", "backup:ok"]
    seen = len(flaky.requests)
    client.chat.completions.create(model="auto", messages=hi)
    assert last_attempts(gateway) == ["flaky:error:overloaded", "backup:ok"]
    assert len(flaky.requests) == seen  # the open circuit kept the request away from it


def test_an_open_circuit_on_the_routes_last_backend_still_gets_traffic(
    rig: tuple[openai.OpenAI, Gateway, OpenAIStandIn],
) -> None:
    """Ejection is capped: a route whose only backend is open still calls it, and the caller
    sees that backend's own answer or error, never a refusal for the circuit."""
    client, gateway, flaky = rig
    hi: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    flaky.reset()
    flaky.script(*[Fail(status=500, type="server_error")] * 4)
    for _ in range(4):
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="alone", messages=hi)
        assert "circuit is open" not in str(err.value.body)
        assert err.value.status_code != 503
    assert len(flaky.requests) == 4  # every call reached it (no retries into an open circuit)
    reply = client.chat.completions.create(model="alone", messages=hi)
    assert reply.choices[0].message.content == "echo: hi"
    client.chat.completions.create(model="auto", messages=hi)
    assert last_attempts(gateway) == ["flaky:error:overloaded", "backup:ok"]  # still open there


def test_a_burst_of_failures_at_a_low_rate_keeps_the_backend_in_service(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Five fast failures in a row, as concurrency orders them, among twenty successes: 20%
    failures. With the default breaker no answer is refused and the backend keeps its traffic
    (the consecutive-failures breaker opened here and refused every later call)."""
    ledger = tmp_path_factory.mktemp("burst") / "gw.db"
    with run_openai_standin() as flaky, run_openai_standin() as backup:
        remote = {"type": "openai_compat", "model": "m", "timeout_s": 5}
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(ledger)},
                "backends": {
                    "flaky": {**remote, "base_url": flaky.base_url},
                    "backup": {**remote, "base_url": backup.base_url},
                },
                "routes": {"auto": {"try": ["flaky"]}, "pair": {"try": ["flaky", "backup"]}},
            }
        )
        app = create_app(config, env={})
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            hi: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
            errors = 0
            flaky.script(*[Fail(status=500, type="server_error")] * 5)
            for _ in range(25):
                try:
                    client.chat.completions.create(model="auto", messages=hi)
                except openai.APIStatusError:
                    errors += 1
            assert errors == 5  # exactly the upstream's own failures
            flaky.script(*[Fail(status=500, type="server_error")] * 5)
            for _ in range(20):
                client.chat.completions.create(model="pair", messages=hi)
            gateway = app.state.gateway
            gateway.ledger.flush()
            served = [r["attempts"][-1] for r in gateway.ledger.recent(20)]
            assert served.count("flaky:ok") == 15 and served.count("backup:ok") == 5


def test_fallback_on_timeout_and_on_a_dead_upstream(tmp_path_factory: pytest.TempPathFactory) -> None:
    ledger = tmp_path_factory.mktemp("fallback") / "gw.db"
    with run_openai_standin() as slow, run_openai_standin() as backup:
        remote = {"type": "openai_compat", "model": "m"}
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(ledger)},
                "backends": {
                    "slow": {**remote, "base_url": slow.base_url, "timeout_s": 0.3},
                    "dead": {
                        **remote,
                        "base_url": "http://127.0.0.1:9/v1",
                        "timeout_s": 2,
                    },  # discard port: refused
                    "backup": {**remote, "base_url": backup.base_url},
                },
                "routes": {"auto": {"try": ["slow", "backup"]}, "dead": {"try": ["dead", "backup"]}},
            }
        )
        slow.script(Fail(status=500, type="server_error", delay_s=2.0))  # answers too late either way
        app = create_app(config, env={})
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            hi: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
            assert (
                client.chat.completions.create(model="auto", messages=hi).choices[0].message.content
                == "echo: hi"
            )
            assert last_attempts(app.state.gateway) == ["slow:error:timeout", "backup:ok"]
            client.chat.completions.create(model="dead", messages=hi)
            assert last_attempts(app.state.gateway) == ["dead:error:service_unavailable", "backup:ok"]
