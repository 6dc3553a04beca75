"""Budgets under real concurrency: 100 requests (and 100 streams) sent at once through the
official SDK on a key whose daily budget covers a few of them. Each request reserves its worst
case at admission, so the spend overshoots the budget by at most one reservation, with limits
in this process and with limits shared through the session's real redis-server (tests/conftest.py).
The upstream is the OpenAI stand-in (tests/standins, not OpenAI), slowed down so that every
request is in flight at the same time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.redis_server import RedisServer
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import Reply, run_openai_standin

PEPPER = "budget-pepper-0123456789"
PER_TOKEN = 0.001  # $1000 per million tokens
MAX_TOKENS = 5
# "hi": at most 2 bytes + 8 framing tokens of prompt, plus max_tokens of output
RESERVATION = (2 + 8 + MAX_TOKENS) * PER_TOKEN
BUDGET = 0.02  # the stand-in's echo costs 3 tokens: $0.003 a request, so 6 fit


@pytest.fixture(scope="module", params=["memory", "redis"])
def gateway(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Gateway]]:
    folder: Path = tmp_path_factory.mktemp("budgets")
    shared = request.param == "redis"
    with run_openai_standin(unscripted=lambda: Reply(delay_s=0.5), record=False) as upstream:
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(folder / "gw.db")},
                "auth": {
                    "enabled": True,
                    "keys_path": str(folder / "keys.db"),
                    "limits_store": "redis" if shared else "memory",
                },
                **(
                    {"redis": {"url": redis_server.url, "key_prefix": "budgets:", "timeout_s": 5}}
                    if shared
                    else {}
                ),
                "backends": {
                    "up": {
                        "type": "openai_compat",
                        "base_url": upstream.base_url,
                        "model": "m",
                        "price": {"input_per_mtok": 1000, "output_per_mtok": 1000},
                    }
                },
                "routes": {"auto": {"try": ["up"]}},
            }
        )
        app = create_app(config, env={"HYBRIDGATE_KEY_PEPPER": PEPPER})
        with serve_in_thread(app) as url:
            yield url, app.state.gateway


async def one(client: openai.AsyncOpenAI, stream: bool) -> bool:
    messages: Any = [{"role": "user", "content": "hi"}]
    try:
        if stream:
            chunks = await client.chat.completions.create(
                model="auto", messages=messages, max_tokens=MAX_TOKENS, stream=True
            )
            async for _ in chunks:
                pass
        else:
            await client.chat.completions.create(model="auto", messages=messages, max_tokens=MAX_TOKENS)
    except openai.RateLimitError:
        return False
    return True


async def hundred_at_once(url: str, key: str, stream: bool) -> int:
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30) as client:
        served = await asyncio.gather(*(one(client, stream) for _ in range(100)))
    return sum(served)


def spent(gateway: Gateway, key_id: str) -> float:
    gateway.ledger.flush()
    rows = [r for r in gateway.ledger.recent(500) if r["api_key_id"] == key_id]
    return float(sum(r["cost_usd"] for r in rows))


@pytest.mark.parametrize("stream", [False, True], ids=["requests", "streams"])
def test_a_hundred_concurrent_requests_overshoot_a_budget_by_at_most_one_reservation(
    gateway: tuple[str, Gateway], stream: bool
) -> None:
    url, gw = gateway
    assert gw.access is not None
    key, record = gw.access.keys.create(environment="default", name=f"tiny-{stream}", budget_usd_day=BUDGET)
    served = asyncio.run(hundred_at_once(url, key, stream))
    assert served >= 1
    assert spent(gw, record.key_id) <= BUDGET + RESERVATION
    assert served <= 7  # two reservations fill the budget while they run; a few more after
