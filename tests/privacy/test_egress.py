"""Every path by which a prompt can leave the machine, against a recording cloud stand-in.

``cloud`` is an OpenAI-compatible stand-in on loopback that records every byte it is sent (it is
not OpenAI); ``local`` is another stand-in marked ``local = true``, standing for a model served
inside the deployment. The environment default is ``allow``; the routes a PII prompt is sent to
(``auto``, ``fallback``, ``cascade``) are ``local_only`` or ``redact`` (the test runs once under
each), while ``cloud``, ``candidate`` and ``judge`` allow. Each path is driven the way traffic or
an operator would: both HTTP edges (openai and anthropic SDKs), streamed and not, a header override,
a rule, a fallback, a cascade escalation, a shadow copy, an eval run, an LLM judge and a replay of
the ledger. Under ``local_only`` no byte of a PII value may reach ``cloud``; under ``redact`` it
may see placeholders only. Remote embedders (``POST /v1/embeddings``) pass the same gate; their
paths are driven in ``tests/api/test_embeddings.py`` (local_only, redact, egress column).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.evals.golden import load_golden
from hybridgate.evals.replay_ledger import logged_prompts, replay_ledger
from hybridgate.evals.runner import run_golden
from hybridgate.gateway import Gateway
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import Fail, OpenAIStandIn, Reply, run_openai_standin
from tests.waiting import wait_until

EMAIL = "ada.lovelace@example.com"
CARD = "4111 1111 1111 1111"
PII_VALUES = (EMAIL, CARD, CARD.replace(" ", ""), "ada.lovelace")
PII_TEXT = f"My Python script mails {EMAIL} the card {CARD}"
ENV = {"HYBRIDGATE_HMAC_SECRET": "egress-test"}


def config_data(local: str, cloud: str, ledger: Path, policy: str) -> dict[str, Any]:
    remote = {"type": "openai_compat", "model": "m", "timeout_s": 5}
    return {
        "ledger": {"path": str(ledger), "flush_interval_s": 0.05, "log_prompts": True},
        "backends": {
            "local": {**remote, "base_url": local, "local": True},
            "cloud": {**remote, "base_url": cloud},
        },
        "routes": {
            "auto": {"try": ["local", "cloud"], "shadow": {"route": "candidate", "percent": 100}},
            "fallback": {"try": ["local", "cloud"]},
            "cascade": {"try": ["local", "cloud"], "cascade": True},
            "cloud": {"try": ["cloud"]},
            "candidate": {"try": ["cloud"]},
            "judge": {"try": ["cloud"]},
        },
        "rules": [{"name": "code-questions", "regex": "(?i)python", "route": "cloud"}],
        "privacy": {
            "policy": "allow",
            "routes": {"auto": policy, "fallback": policy, "cascade": policy},
            "ner_model": None,
        },
    }


@dataclass
class Rig:
    policy: str
    gateway: Gateway
    url: str
    local: OpenAIStandIn
    cloud: OpenAIStandIn
    config: dict[str, Any]
    tmp: Path

    def cloud_saw(self) -> str:
        return json.dumps([r.body for r in self.cloud.requests], ensure_ascii=False)

    def rows(self) -> list[dict[str, Any]]:
        self.gateway.ledger.flush()
        return self.gateway.ledger.recent(200)


@pytest.fixture(scope="module", params=["local_only", "redact"])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp(f"egress-{request.param}")
    with run_openai_standin() as local, run_openai_standin() as cloud:
        data = config_data(local.base_url, cloud.base_url, tmp / "gw.db", request.param)
        app = create_app(GatewayConfig.model_validate(data), env=ENV)
        with serve_in_thread(app) as url:
            yield Rig(request.param, app.state.gateway, url, local, cloud, data, tmp)


@pytest.fixture
def r(rig: Rig) -> Rig:
    rig.local.reset()
    rig.cloud.reset()
    return rig


def ask_openai(rig: Rig, model: str, stream: bool, headers: dict[str, str] | None = None) -> None:
    with openai.OpenAI(base_url=f"{rig.url}/v1", api_key="k", max_retries=0) as client:
        messages: list[Any] = [{"role": "user", "content": PII_TEXT}]
        try:
            if stream:
                for _ in client.chat.completions.create(
                    model=model, messages=messages, stream=True, extra_headers=headers
                ):
                    pass
            else:
                client.chat.completions.create(model=model, messages=messages, extra_headers=headers)
        except openai.APIStatusError:
            pass  # refused (fail closed) is one allowed outcome; what the cloud saw is the test


def ask_anthropic(rig: Rig, model: str, stream: bool, headers: dict[str, str] | None = None) -> None:
    with anthropic.Anthropic(base_url=rig.url, api_key="k", max_retries=0) as client:
        messages: list[Any] = [{"role": "user", "content": PII_TEXT}]
        try:
            if stream:
                with client.messages.stream(
                    model=model, max_tokens=50, messages=messages, extra_headers=headers
                ) as events:
                    events.get_final_message()
            else:
                client.messages.create(model=model, max_tokens=50, messages=messages, extra_headers=headers)
        except anthropic.APIStatusError:
            pass


Ask = Callable[[Rig, str, bool, dict[str, str] | None], None]
EDGES: dict[str, Ask] = {"openai": ask_openai, "anthropic": ask_anthropic}


def drive(rig: Rig, path: str, ask: Ask, stream: bool) -> None:
    """One request down ``path``: the live request and whatever it sets off."""
    if path == "header":
        ask(rig, "auto", stream, {"x-hybridgate-route": "cloud"})
    elif path == "rule":  # "Python" in the prompt: the rule moves it to the cloud route
        ask(rig, "auto", stream, None)
    elif path == "fallback":
        rig.local.script(Fail(status=503, type="server_error"))
        ask(rig, "fallback", stream, None)
    elif path == "escalation":  # an empty local answer fails the cascade's check
        rig.local.script(Reply(content=""))
        ask(rig, "cascade", stream, None)
    elif path == "shadow":  # the rule sends "Python" prompts elsewhere; this one stays on auto
        request_id = f"shadowed-{time.monotonic_ns()}"
        ask(rig, "auto", stream, {"x-hybridgate-route": "auto", "x-request-id": request_id})
        wait_for_shadow(rig, request_id)


def wait_for_shadow(rig: Rig, request_id: str) -> None:
    wait_until(lambda: any(row["shadow_of"] == request_id for row in rig.rows()), 5, "the shadow's row")


def assert_no_pii_left(rig: Rig) -> None:
    saw = rig.cloud_saw()
    for value in PII_VALUES:
        assert value not in saw
    if rig.policy == "redact" and rig.cloud.requests:
        assert "<EMAIL_ADDRESS_1>" in saw and "<CREDIT_CARD_1>" in saw


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("edge", sorted(EDGES))
@pytest.mark.parametrize("path", ["header", "rule", "fallback", "escalation", "shadow"])
def test_live_paths_keep_pii_off_the_cloud(r: Rig, path: str, edge: str, stream: bool) -> None:
    drive(r, path, EDGES[edge], stream)
    assert_no_pii_left(r)
    egress = [e for row in r.rows() for e in row["egress"]]
    want = "redacted" if r.policy == "redact" else "blocked"
    assert any(e.startswith("cloud:") and e.endswith(f":{want}") for e in egress)
    assert not any(e.endswith(":allowed") for e in egress)
    metrics = r.gateway.metrics.render()[0].decode()
    assert f'hybridgate_egress_total{{backend="cloud",decision="{want}"' in metrics


def golden(tmp: Path, judge: bool) -> Path:
    expect = (
        '{ grader = "judge", rubric = "repeats the card" }'
        if judge
        else '{ grader = "contains", value = "x" }'
    )
    path = tmp / ("judged.toml" if judge else "golden.toml")
    path.write_text(f'[[cases]]\nid = "pii"\nprompt = "{PII_TEXT}"\nexpect = {expect}\n')
    return path


def test_eval_runs_keep_pii_off_the_cloud(r: Rig) -> None:
    r.local.script(Fail(status=503, type="server_error"))
    config = GatewayConfig.model_validate({**r.config, "ledger": {"path": str(r.tmp / "eval.db")}})
    asyncio.run(run_golden(config, load_golden(golden(r.tmp, False)), ["fallback"], env=ENV, concurrency=1))
    assert_no_pii_left(r)


def test_judge_calls_keep_the_graded_request_policy(r: Rig) -> None:
    """The local tier answers (echoing the PII); the judge route allows, but the judge call is
    held to the graded request's policy."""
    config = GatewayConfig.model_validate({**r.config, "ledger": {"path": str(r.tmp / "judge.db")}})
    spec = load_golden(golden(r.tmp, True))
    results = asyncio.run(run_golden(config, spec, ["fallback"], env=ENV, judge_route="judge", concurrency=1))
    assert results[0].backend == "local"
    assert_no_pii_left(r)


def test_replays_keep_the_recorded_policy(r: Rig) -> None:
    """Rows replayed through a candidate whose ``auto`` is cloud-only and allows: a row keeps the
    policy recorded on it, and a row without one is treated as ``local_only``."""
    ledger_path = r.tmp / "replay.db"
    ledger = SqliteLedger(str(ledger_path), flush_interval_s=0.01)
    ledger.start()
    for request_id, policy in (("recorded", r.policy), ("unrecorded", None)):
        ledger.record(
            LedgerRecord(ts=time.time(), request_id=request_id, prompt_text=PII_TEXT, privacy=policy)
        )
    ledger.close()
    candidate_data = {**r.config, "ledger": {"path": str(r.tmp / "candidate.db")}}
    candidate_data["routes"] = {**r.config["routes"], "auto": {"try": ["cloud"]}}
    candidate_data["privacy"] = {"policy": "allow", "ner_model": None}
    candidate = GatewayConfig.model_validate(candidate_data)
    current = GatewayConfig.model_validate({**r.config, "ledger": {"path": str(r.tmp / "current.db")}})
    rows = logged_prompts(SqliteLedger(str(ledger_path)), 10)
    asyncio.run(replay_ledger(current, candidate, rows, env=ENV, concurrency=1))
    saw = r.cloud_saw()
    for value in PII_VALUES:
        assert value not in saw
    assert {row.privacy for row in rows} == {r.policy, "local_only"}
    # without [privacy] in the candidate nothing is scanned: a strict recorded policy still holds
    del candidate_data["privacy"]
    r.cloud.reset()
    unscanned = GatewayConfig.model_validate(candidate_data)
    asyncio.run(replay_ledger(current, unscanned, rows, env=ENV, concurrency=1))
    assert not any(value in r.cloud_saw() for value in PII_VALUES)
