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
from hybridgate.config import GatewayConfig
from hybridgate.errors import BackendOverloadedError
from hybridgate.gateway import Gateway
from hybridgate.resilience import Admission, CircuitBreaker, backoff_s
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import Fail, OpenAIStandIn, run_openai_standin


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_n_failures_then_half_opens_one_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker("b", failures=2, cooldown_s=10, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    breaker.before_call()  # one failure: still closed
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(BackendOverloadedError) as err:
        breaker.before_call()
    assert err.value.retry_after_s == pytest.approx(10)
    clock.now = 10.5
    breaker.before_call()  # the probe
    with pytest.raises(BackendOverloadedError):
        breaker.before_call()  # only one probe at a time
    breaker.record_failure()
    assert breaker.state == "open"  # a failed probe reopens at once
    clock.now = 21
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"


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
                        "breaker_failures": 3,
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
    flaky.script(*[Fail(status=500, type="server_error")] * 3)
    client.chat.completions.create(model="auto", messages=hi)
    assert last_attempts(gateway) == ["flaky:retry:server_error", "flaky:error:server_error", "backup:ok"]
    seen = len(flaky.requests)
    client.chat.completions.create(model="auto", messages=hi)  # the third failure opens the circuit
    assert last_attempts(gateway) == ["flaky:error:server_error", "backup:ok"]  # no retry into it
    client.chat.completions.create(model="auto", messages=hi)
    assert last_attempts(gateway) == ["flaky:error:overloaded", "backup:ok"]
    assert len(flaky.requests) == seen + 1  # the open circuit kept the last request away from it


def test_an_open_circuit_with_no_next_tier_tells_the_caller_when_to_come_back(
    rig: tuple[openai.OpenAI, Gateway, OpenAIStandIn],
) -> None:
    client, _, flaky = rig
    hi: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    flaky.script(*[Fail(status=500, type="server_error")] * 10)
    refusal = None
    for _ in range(5):
        try:
            client.chat.completions.create(model="alone", messages=hi)
        except openai.APIStatusError as exc:
            if exc.status_code == 503:
                refusal = exc
                break
    flaky.reset()
    assert refusal is not None, "the breaker never opened"
    assert refusal.body is not None and "circuit is open" in str(refusal.body)
    assert int(refusal.response.headers["retry-after"]) >= 1


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
