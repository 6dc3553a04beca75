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
from typing import Any

import pytest

from tests.api.conftest import Rig
from tests.standins.anthropic_upstream import Reply as ClaudeReply

pytestmark = pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="litellm not installed")

CLIENT = """
import json, sys
import litellm

url, step = sys.argv[1], sys.argv[2]
hello = [{"role": "user", "content": "hello from litellm"}]
if step == "openai":
    reply = litellm.completion(model="openai/gpt-4o-mini", api_base=url + "/v1", api_key="k", messages=hello)
    chunks = litellm.completion(
        model="openai/gpt-4o-mini", api_base=url + "/v1", api_key="k", messages=hello, stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    print(json.dumps({"text": reply.choices[0].message.content, "streamed": streamed}))
else:
    reply = litellm.completion(
        model="anthropic/claude-sonnet-4-5", api_base=url, api_key="k", messages=hello,
        stop=["END"], max_tokens=50,
    )
    print(json.dumps({"text": reply.choices[0].message.content}))
"""


def litellm_client(url: str, step: str) -> Any:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, url, step], capture_output=True, text=True, timeout=180, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_litellm_openai_provider(gw: Rig) -> None:
    result = litellm_client(gw.url, "openai")
    assert "hello from litellm" in result["text"] and "hello from litellm" in result["streamed"]
    assert gw.primary.last_request.body["model"] == "gpt-4o-mini"


def test_litellm_anthropic_provider_with_a_stop_sequence(gw: Rig) -> None:
    gw.claude.script(ClaudeReply(text="one two END three"))
    result = litellm_client(gw.url, "anthropic")
    assert result["text"].strip() == "one two"
    assert gw.claude.last_request.body["model"] == "claude-sonnet-4-5"
    assert gw.claude.last_request.body["stop_sequences"] == ["END"]
