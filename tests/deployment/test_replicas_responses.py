"""Two gateway replicas share stored Responses answers through the PostgreSQL ledger: a
conversation started on one continues on the other.

Real parts: two ``python -m hybridgate serve`` child processes (tests/gateway_process.py) with the
same deployment secret, a database on the session's PostgreSQL server (Debian's packages, on
loopback: tests/conftest.py), the official ``openai`` SDK. The upstream is the OpenAI stand-in from
tests/standins (a test server on loopback, not OpenAI).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.deployment.test_replicas_ledger import replica_config
from tests.standins.openai_upstream import Reply, ToolCall, run_openai_standin


def test_a_conversation_started_on_one_replica_continues_on_the_other(
    tmp_path: Path, postgres_dsn: str, start_gateway: GatewayFactory
) -> None:
    call = ToolCall(name="lookup", arguments='{"q": "x"}')
    tool: openai.types.responses.FunctionToolParam = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        "strict": False,
    }
    with run_openai_standin(api_key="sk-up") as upstream, ExitStack() as stack:
        replicas = []
        for name, secret in (("a", "shared-secret"), ("b", "shared-secret"), ("c", "another-secret")):
            workdir = tmp_path / name
            config = replica_config(upstream.base_url, workdir, postgres_dsn, 0.05)
            config += '[responses]\nstore = "local"\n'
            replicas.append(start_gateway(config, name, env={"HYBRIDGATE_HMAC_SECRET": secret}))
        a, b, c = (
            stack.enter_context(openai.OpenAI(base_url=f"{r.url}/v1", api_key="caller", max_retries=0))
            for r in replicas
        )
        upstream.script(Reply(tool_calls=[call]), Reply(content="found it"))
        first = a.responses.create(model="auto", input="look it up", tools=[tool])
        assert first.output[0].type == "function_call"
        second = b.responses.create(
            model="auto",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.id, "output": "x=1"}],
            tools=[tool],
        )
        assert second.output_text == "found it"
        assert [m["role"] for m in upstream.last_request.body["messages"]] == ["user", "assistant", "tool"]
        assert a.responses.retrieve(second.id).output_text == "found it"
        with pytest.raises(openai.NotFoundError):  # another deployment secret opens nothing
            c.responses.retrieve(first.id)
        b.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            a.responses.retrieve(first.id)
