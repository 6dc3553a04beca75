"""Cascade routes: the cheap tier answers first; failed checks or low confidence escalate.

The cheap tier is the real embedded SmolLM2 model or an OpenAI stand-in; the strong tier is an
OpenAI-compatible stand-in on loopback (not OpenAI). Driven through the official SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import OpenAIStandIn, Reply, run_openai_standin


@dataclass
class CascadeRig:
    client: openai.OpenAI
    gateway: Gateway
    cheap: OpenAIStandIn
    strong: OpenAIStandIn

    def last_row(self) -> dict[str, Any]:
        self.gateway.ledger.flush()
        return self.gateway.ledger.recent(1)[0]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CascadeRig]:
    ledger = tmp_path_factory.mktemp("cascade") / "gw.db"
    with run_openai_standin() as cheap, run_openai_standin(models=("strong-model",)) as strong:
        remote = {"type": "openai_compat", "timeout_s": 5}
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(ledger)},
                "backends": {
                    "local": {"type": "embedded", "default_max_tokens": 8},
                    "cheap": {
                        **remote,
                        "base_url": cheap.base_url,
                        "model": "cheap-model",
                        "local": True,
                        "price": {"input_per_mtok": 1, "output_per_mtok": 1},
                    },
                    "strong": {
                        **remote,
                        "base_url": strong.base_url,
                        "model": "strong-model",
                        "price": {"input_per_mtok": 10, "output_per_mtok": 30},
                    },
                },
                "routes": {
                    "auto": {"try": ["cheap", "strong"], "cascade": True},
                    "picky": {"try": ["local", "strong"], "cascade": True, "min_confidence": 0.999},
                    "lenient": {"try": ["local", "strong"], "cascade": True, "min_confidence": 0.0001},
                },
            }
        )
        app = create_app(config, env={})
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            yield CascadeRig(client, app.state.gateway, cheap, strong)


def ask(rig: CascadeRig, route: str, stream: bool = False) -> str:
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "Name a fruit."}
    ]
    # a stop sequence ends SmolLM2's answer early, so the token limit does not decide escalation
    if not stream:
        reply = rig.client.chat.completions.create(
            model=route, messages=messages, max_tokens=40, temperature=0, stop=[".", "\n"]
        )
        assert reply.choices[0].logprobs is None  # logprobs asked only for the check are not passed on
        return reply.choices[0].message.content or ""
    chunks = rig.client.chat.completions.create(
        model=route, messages=messages, max_tokens=40, temperature=0, stop=[".", "\n"], stream=True
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("stream", [False, True])
def test_good_cheap_answer_is_kept(rig: CascadeRig, stream: bool) -> None:
    strong_before = len(rig.strong.requests)
    assert ask(rig, "auto", stream) == "echo: Name a fruit."
    assert len(rig.strong.requests) == strong_before
    row = rig.last_row()
    assert row["attempts"] == ["cheap:ok"] and row["escalations"] == 0


@pytest.mark.parametrize("stream", [False, True])
def test_empty_or_cut_off_cheap_answer_escalates(rig: CascadeRig, stream: bool) -> None:
    rig.cheap.script(Reply(content="half an answ", finish_reason="length"))
    assert ask(rig, "auto", stream) == "echo: Name a fruit."  # from the strong stand-in
    row = rig.last_row()
    assert row["attempts"] == ["cheap:check_failed:finish_reason", "strong:ok"]
    assert row["escalations"] == 1 and row["wasted_tokens"] > 0 and row["wasted_ms"] > 0
    assert row["backend"] == "strong"
    # the wasted cheap call is part of the request's cost: 1$/Mtok on top of the strong tier's
    strong_only = (row["prompt_tokens"] * 10 + row["completion_tokens"] * 30) / 1e6
    assert row["cost_usd"] > strong_only


@pytest.mark.parametrize("stream", [False, True])
def test_low_confidence_of_the_embedded_model_escalates(rig: CascadeRig, stream: bool) -> None:
    assert ask(rig, "picky", stream) == "echo: Name a fruit."
    row = rig.last_row()
    assert row["attempts"] == ["local:check_failed:confidence", "strong:ok"]


def test_confident_enough_embedded_answer_is_kept(rig: CascadeRig) -> None:
    answer = ask(rig, "lenient", stream=True)
    row = rig.last_row()
    assert row["attempts"] == ["local:ok"] and answer and not answer.startswith("echo:")


def test_cheap_failure_then_strong(rig: CascadeRig, tmp_path: Path) -> None:
    rig.cheap.script(Reply(content=""))
    assert ask(rig, "auto") == "echo: Name a fruit."
    assert rig.last_row()["attempts"] == ["cheap:check_failed:non_empty", "strong:ok"]
