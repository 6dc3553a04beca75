"""litellm as a client of the gateway: its OpenAI and Anthropic providers, plain and streamed.

Stand-ins (tests/compat/conftest.py) answer upstream and record what they received: ``primary``
speaks OpenAI's format (gpt-4o-mini), ``claude`` Anthropic's. The gateway is the real app.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest

from tests.api.conftest import Rig
from tests.standins.anthropic_upstream import Reply as ClaudeReply

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the price list at import
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # litellm's own import-time deprecation warnings
    litellm: Any = pytest.importorskip("litellm")

# litellm imports its providers lazily, at call time; their pydantic and deprecation warnings are
# litellm's, not the gateway's.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
HELLO = [{"role": "user", "content": "hello from litellm"}]


def test_litellm_openai_provider(gw: Rig) -> None:
    reply = litellm.completion(
        model="openai/gpt-4o-mini", api_base=f"{gw.url}/v1", api_key="caller-key", messages=HELLO
    )
    assert "hello from litellm" in reply.choices[0].message.content
    assert gw.primary.last_request.body["model"] == "gpt-4o-mini"
    chunks = litellm.completion(
        model="openai/gpt-4o-mini", api_base=f"{gw.url}/v1", api_key="caller-key", messages=HELLO, stream=True
    )
    assert "hello from litellm" in "".join(c.choices[0].delta.content or "" for c in chunks)


def test_litellm_anthropic_provider_with_a_stop_sequence(gw: Rig) -> None:
    gw.claude.script(ClaudeReply(text="one two END three"))
    reply = litellm.completion(
        model="anthropic/claude-sonnet-4-5",
        api_base=gw.url,
        api_key="caller-key",
        messages=HELLO,
        stop=["END"],
        max_tokens=50,
    )
    assert reply.choices[0].message.content.strip() == "one two"
    assert gw.claude.last_request.body["model"] == "claude-sonnet-4-5"
    assert gw.claude.last_request.body["stop_sequences"] == ["END"]
