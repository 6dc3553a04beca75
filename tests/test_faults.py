"""Faults after the upstream has started answering: streams held back until their commit point
fall back unseen, streams past it end with an error event on both edges, and a paid answer is
recorded and charged whatever fails after it.

Through the official SDKs over real HTTP; the upstreams are OpenAI-compatible stand-ins on
loopback (tests/standins, not OpenAI) scripted to break at a given chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.cascade import core as cascade_module
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import (
    Drop,
    FailMidStream,
    OpenAIStandIn,
    Reply,
    ToolCall,
    Truncate,
    run_openai_standin,
)

PRICE = {"input_per_mtok": 1000, "output_per_mtok": 1000}
EIGHT = "one two three four five six seven eight"


@dataclass
class Rig:
    url: str
    gateway: Gateway
    flaky: OpenAIStandIn

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="k", max_retries=0)

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key="k", max_retries=0)

    def last_row(self) -> dict[str, Any]:
        self.gateway.ledger.flush()
        row: dict[str, Any] = self.gateway.ledger.recent(1)[0]
        return row


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    ledger = tmp_path_factory.mktemp("faults") / "gw.db"
    with run_openai_standin() as flaky, run_openai_standin() as good:
        remote = {"type": "openai_compat", "model": "m", "timeout_s": 5, "price": PRICE}
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(ledger)},
                "backends": {
                    "flaky": {**remote, "base_url": flaky.base_url},
                    "good": {**remote, "base_url": good.base_url},
                },
                "default_route": "pair",
                "routes": {
                    # a long commit_ms: the commit point is reached by tokens, whatever the timing
                    "pair": {"try": ["flaky", "good"], "commit_tokens": 3, "commit_ms": 10_000},
                    "alone": {"try": ["flaky"]},
                },
            }
        )
        app = create_app(config, env={})
        with serve_in_thread(app) as url:
            yield Rig(url, app.state.gateway, flaky)


def streamed_text(client: openai.OpenAI, route: str) -> str:
    stream = client.chat.completions.create(
        model=route, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


@pytest.mark.parametrize(
    "fault",
    [
        Drop(after_chunks=2, content=EIGHT),
        Truncate(after_chunks=3, content=EIGHT),
        FailMidStream(after_chunks=2),
    ],
    ids=["dropped", "truncated", "error-event"],
)
def test_a_stream_failing_before_its_commit_point_falls_back_unseen(rig: Rig, fault: Any) -> None:
    rig.flaky.script(fault)
    with rig.openai() as client:
        assert streamed_text(client, "pair") == "echo: hi"  # the fallback's whole answer, nothing else
    row = rig.last_row()
    assert row["status"] == 200 and row["backend"] == "good"
    assert row["attempts"][0].startswith("flaky:error:") and row["attempts"][-1] == "good:ok"


def test_a_stream_failing_after_its_commit_point_ends_with_an_error_event(rig: Rig) -> None:
    rig.flaky.script(Drop(after_chunks=6, content=EIGHT))  # role + 5 words, then the line drops
    received: list[str] = []
    with rig.openai() as client, pytest.raises(openai.APIError):
        stream = client.chat.completions.create(
            model="pair", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        for chunk in stream:
            received += [chunk.choices[0].delta.content or ""] if chunk.choices else []
    assert "".join(received) == "one two three four five"
    row = rig.last_row()
    assert row["status"] == 502 and row["error_type"] != "client_closed"
    assert row["completion_tokens"] == 5 and row["cost_usd"] > 0  # the tokens served, charged


def test_the_anthropic_edge_ends_a_broken_stream_with_an_error_event(rig: Rig) -> None:
    rig.flaky.script(Drop(after_chunks=6, content=EIGHT))
    with (
        rig.anthropic() as client,
        pytest.raises(anthropic.APIError),
        client.messages.stream(
            model="pair", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        for _ in stream.text_stream:
            pass
    row = rig.last_row()
    assert row["status"] == 502 and row["api"] == "anthropic" and row["completion_tokens"] == 5


def test_a_single_backend_stream_is_not_held_back(rig: Rig) -> None:
    """Without a fallback there is nothing to wait for: the caller gets what came, then the error."""
    rig.flaky.script(Drop(after_chunks=2, content=EIGHT))
    received: list[str] = []
    with rig.openai() as client, pytest.raises(openai.APIError):
        stream = client.chat.completions.create(
            model="alone", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        for chunk in stream:
            received += [chunk.choices[0].delta.content or ""] if chunk.choices else []
    assert "".join(received) == "one"
    assert rig.last_row()["completion_tokens"] == 1


def test_an_answer_paid_for_is_recorded_when_a_later_step_fails(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream answers (and bills) a tool call; checking it then fails inside the gateway.
    Client input can no longer make that step fail (hostile schemas are refused at the edge), so
    the fault is injected: the answer check raises, as a bug would. The row still names the
    backend, its tokens and their cost."""

    def broken_check(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected: a bug in the answer check")

    monkeypatch.setattr(cascade_module, "run_checks", broken_check)
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    rig.flaky.script(Reply(tool_calls=[ToolCall(name="lookup", arguments='{"q": "x"}')]))
    with rig.openai() as client, pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="alone",
            messages=[{"role": "user", "content": "hi"}],
            tools=[tool],  # type: ignore[list-item]
        )
    row = rig.last_row()
    assert row["status"] == 500
    assert row["attempts"] == ["flaky:ok"] and row["backend"] == "flaky"
    assert row["completion_tokens"] > 0 and row["cost_usd"] > 0
