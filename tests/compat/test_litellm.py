"""litellm as a client of the gateway: its OpenAI and Anthropic providers, plain and streamed.

litellm runs in its own process, as in a real app: it leaves event loops and sockets open at
exit, which must not leak into this test process. Stand-ins (tests/compat/conftest.py) answer
upstream and record what they received: ``primary`` speaks OpenAI's format (gpt-4o-mini),
``claude`` Anthropic's. The gateway is the real app.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Rig
from tests.standins.anthropic_upstream import Reply as ClaudeReply

pytestmark = pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="litellm not installed")

CLIENT = """
import json, sys
import litellm

hello = [{"role": "user", "content": "hello from litellm"}]
for line in sys.stdin:  # one request per line: "<gateway url> <step>"; one JSON answer line each
    url, step = line.split()
    if step == "openai":
        openai_call = dict(model="openai/gpt-4o-mini", api_base=url + "/v1", api_key="k", messages=hello)
        reply = litellm.completion(**openai_call)
        chunks = litellm.completion(**openai_call, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
        answer = {"text": reply.choices[0].message.content, "streamed": streamed}
    else:
        reply = litellm.completion(
            model="anthropic/claude-sonnet-4-5", api_base=url, api_key="k", messages=hello,
            stop=["END"], max_tokens=50,
        )
        answer = {"text": reply.choices[0].message.content}
    print("ANSWER " + json.dumps(answer), flush=True)
"""


@dataclass
class Litellm:
    process: subprocess.Popen[str]
    stderr: Path


@pytest.fixture(scope="module")
def litellm_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Litellm]:
    """One litellm process for the module (importing litellm takes seconds), fed one request per
    line; it is killed at the end, whatever litellm left open."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONWARNINGS": "ignore"}
    stderr = tmp_path_factory.mktemp("litellm") / "stderr.txt"
    with stderr.open("w") as sink, subprocess.Popen(
        [sys.executable, "-c", CLIENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sink,
        text=True, env=env,
    ) as process:  # fmt: skip
        try:
            yield Litellm(process, stderr)
        finally:
            process.kill()
            process.wait(timeout=10)


def litellm_client(litellm: Litellm, url: str, step: str) -> Any:
    """Send one request; a litellm that has not answered within 180 s is killed (the test fails)."""
    process = litellm.process
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(f"{url} {step}\n")
    process.stdin.flush()
    watchdog = threading.Timer(180, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:  # litellm may print lines of its own first
            if line.startswith("ANSWER "):
                return json.loads(line.removeprefix("ANSWER "))
    finally:
        watchdog.cancel()
    raise AssertionError(
        f"litellm exited with {process.wait(timeout=10)}:\n{litellm.stderr.read_text()[-2000:]}"
    )


def test_litellm_openai_provider(gw: Rig, litellm_process: Litellm) -> None:
    result = litellm_client(litellm_process, gw.url, "openai")
    assert "hello from litellm" in result["text"] and "hello from litellm" in result["streamed"]
    assert gw.primary.last_request.body["model"] == "gpt-4o-mini"


def test_litellm_anthropic_provider_with_a_stop_sequence(gw: Rig, litellm_process: Litellm) -> None:
    gw.claude.script(ClaudeReply(text="one two END three"))
    result = litellm_client(litellm_process, gw.url, "anthropic")
    assert result["text"].strip() == "one two"
    assert gw.claude.last_request.body["model"] == "claude-sonnet-4-5"
    assert gw.claude.last_request.body["stop_sequences"] == ["END"]
