"""Outcome sampling and POST /v1/feedback, through the official openai SDK over real HTTP.

Stand-ins: ``cheap`` and ``strong`` are OpenAI-compatible stand-in servers on loopback
(tests/standins/), not real providers. ``cheap`` answers "wrong: ..." to prompts with "sum" in
them and echoes the others; ``strong`` answers questions, and, when it is asked as the judge,
says BAD for an answer starting with "wrong" and GOOD otherwise. The gateway, its SQLite ledger
and the privacy screen (patterns only) are real.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from hybridgate.pipeline.outcomes import JUDGE_SYSTEM
from tests.api.test_dashboard import chromium
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import Fail, OpenAIStandIn, run_openai_standin
from tests.standins.openai_wire import Behaviour, Reply

Json = dict[str, Any]


def _text(body: Json) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def cheap_reply(body: Json) -> Reply:
    text = _text(body)
    return Reply(content=f"wrong: {text[-20:]}" if "sum" in text else f"fine: {text[-20:]}")


def strong_reply(body: Json) -> Reply:
    text = _text(body)
    if JUDGE_SYSTEM in text:
        cheaper = text.split("Cheaper model's answer:")[-1].strip()
        return Reply(content="BAD\nit is wrong" if cheaper.startswith("wrong") else "GOOD\nsame answer")
    return Reply(content="the right answer")


class Scripted(OpenAIStandIn):
    """A stand-in whose default reply depends on the request (scripted failures still come first)."""

    def __init__(self, reply: Any) -> None:
        super().__init__()
        self._reply = reply

    def _respond(self, behaviour: Behaviour, body: Json) -> Any:
        if type(behaviour) is Reply and behaviour == Reply():
            behaviour = self._reply(body)
        return super()._respond(behaviour, body)


@dataclass
class Rig:
    url: str
    gateway: Gateway
    cheap: OpenAIStandIn
    strong: OpenAIStandIn
    ledger: Path

    def client(self, key: str = "k") -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)

    def outcomes(self, request_id: str) -> list[Json]:
        with sqlite3.connect(self.ledger) as conn:
            conn.row_factory = sqlite3.Row
            sql = "SELECT * FROM outcomes WHERE request_id = ?"
            try:
                return [dict(r) for r in conn.execute(sql, (request_id,))]
            except sqlite3.OperationalError:  # no table yet: nothing graded yet
                return []

    def wait_outcomes(self, request_id: str, n: int = 1) -> list[Json]:
        deadline = time.monotonic() + 10
        while ((found := self.outcomes(request_id)) and len(found) < n) or not found:
            if time.monotonic() > deadline:
                return found
            time.sleep(0.05)
        return found

    def outcomes_for_route(self, route: str) -> list[Json]:
        with sqlite3.connect(self.ledger) as conn:
            conn.row_factory = sqlite3.Row
            sql = "SELECT * FROM outcomes WHERE route = ? AND cheap_score IS NOT NULL"
            return [dict(r) for r in conn.execute(sql, (route,))]

    def rows(self, prefix: str) -> list[Json]:
        self.gateway.ledger.flush()
        return [r for r in self.gateway.ledger.recent(200) if r["request_id"].startswith(prefix)]


def rig_config(cheap: str, strong: str, ledger: Path, percent: float) -> GatewayConfig:
    backend = {"type": "openai_compat", "model": "gpt-4o-mini", "provider": "openai", "timeout_s": 5}
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(ledger), "flush_interval_s": 0.05},
            "privacy": {"policy": "allow", "ner_model": None},
            "backends": {"cheap": {**backend, "base_url": cheap}, "strong": {**backend, "base_url": strong}},
            "routes": {
                "auto": {"try": ["cheap", "strong"], "outcomes": {"sample_percent": percent}},
                "unsampled": {"try": ["cheap", "strong"]},
                "cheap-only": {"try": ["cheap"]},
            },
            "cache": {"mode": "off"},
        }
    )


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    ledger = tmp_path_factory.mktemp("outcomes") / "gw.db"
    cheap, strong = Scripted(cheap_reply), Scripted(strong_reply)
    with (
        serve_in_thread(cheap.app(), lifespan="off") as cheap_url,
        serve_in_thread(strong.app(), lifespan="off") as strong_url,
    ):
        cheap.base_url, strong.base_url = f"{cheap_url}/v1", f"{strong_url}/v1"
        app = create_app(rig_config(cheap.base_url, strong.base_url, ledger, 100), env={})
        with serve_in_thread(app) as url:
            yield Rig(url, app.state.gateway, cheap, strong, ledger)


def ask(rig: Rig, text: str, request_id: str, model: str = "auto", key: str = "k") -> str:
    with rig.client(key) as client:
        reply = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": text}],
            extra_headers={"x-request-id": request_id},
        )
    assert reply._request_id == request_id  # the SDK exposes x-request-id: what /v1/feedback takes
    return reply.choices[0].message.content or ""


@pytest.mark.parametrize(("text", "score"), [("what is the sum of 2 and 3", 0.0), ("say hello", 1.0)])
def test_a_sampled_cheap_answer_is_judged_by_the_strong_tier(rig: Rig, text: str, score: float) -> None:
    rid = f"judged-{int(score)}"
    assert ask(rig, text, rid).startswith("wrong" if score == 0 else "fine")
    (outcome,) = rig.wait_outcomes(rid)
    assert outcome["source"] == "judge" and outcome["served"] == "cheap" and outcome["route"] == "auto"
    assert outcome["cheap_score"] == score
    assert outcome["judge_cost_usd"] > 0  # the strong answer and the verdict, priced
    assert outcome["prompt_text"] is None  # log_prompts is off
    judge_rows = rig.rows(f"{rid}-")
    assert {r["traffic"] for r in judge_rows} == {"judge"} and len(judge_rows) == 2
    assert {r["backend"] for r in judge_rows} == {"strong"}
    (live,) = [r for r in rig.rows(rid) if r["request_id"] == rid]
    assert live["traffic"] == "live" and live["backend"] == "cheap"
    assert outcome["judge_cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in judge_rows))


def test_a_request_with_pii_never_goes_to_a_cloud_judge(rig: Rig) -> None:
    before = len(rig.strong.requests)
    ask(rig, "what is the sum on the invoice for jane.doe@example.com", "pii-1")
    ask(rig, "say hello", "after-pii")  # sampled after it: its outcome shows grading has run
    assert rig.wait_outcomes("after-pii")
    assert rig.outcomes("pii-1") == []
    assert not [r for r in rig.strong.requests[before:] if "jane.doe" in str(r.body)]
    assert rig.rows("pii-1-") == []


def test_a_failing_judge_neither_fails_the_request_nor_records_an_outcome(rig: Rig) -> None:
    rig.strong.script(Fail(status=500, type="server_error", message="judge down"))
    assert ask(rig, "say hello again", "judge-down").startswith("fine")
    ask(rig, "say hello once more", "after-judge-down")
    assert rig.wait_outcomes("after-judge-down")
    assert rig.outcomes("judge-down") == []
    failed = rig.rows("judge-down-")
    assert failed and failed[0]["traffic"] == "judge" and failed[0]["status"] >= 500


def test_an_unsampled_route_is_not_graded(rig: Rig) -> None:
    before = len(rig.strong.requests)
    ask(rig, "say hello", "unsampled-1", model="unsampled")
    ask(rig, "say hello", "after-unsampled")
    assert rig.wait_outcomes("after-unsampled")
    assert rig.outcomes("unsampled-1") == []
    assert len(rig.strong.requests) - before == 2  # only after-unsampled's answer and verdict


def feedback(rig: Rig, body: Json, key: str = "k") -> Json:
    with rig.client(key) as client:
        response = client.post("/feedback", body=body, cast_to=httpx.Response)
    result: Json = response.json()
    return result


def test_feedback_rates_the_callers_own_answer_idempotently(rig: Rig) -> None:
    ask(rig, "say hello", "rated-1", model="unsampled")
    assert feedback(rig, {"request_id": "rated-1", "score": "up"})["served"] == "cheap"
    (row,) = rig.outcomes("rated-1")
    assert row["source"] == "feedback" and row["cheap_score"] == 1.0 and row["strong_score"] is None
    assert feedback(rig, {"request_id": "rated-1", "score": 0.25})["score"] == 0.25
    (row,) = rig.outcomes("rated-1")  # still one row: the second rating replaced the first
    assert row["cheap_score"] == 0.25


def test_feedback_on_another_keys_request_is_not_found(rig: Rig) -> None:
    ask(rig, "say hello", "mine-1", model="unsampled")
    with pytest.raises(openai.NotFoundError) as caught:
        feedback(rig, {"request_id": "mine-1", "score": "down"}, key="someone-else")
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert caught.value.body["param"] == "request_id"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        feedback(rig, {"request_id": "never-made", "score": "down"})
    assert rig.outcomes("mine-1") == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"request_id": "x", "score": 1.5}, "score"),
        ({"request_id": "x", "score": "sideways"}, "score"),
        ({"request_id": "x", "score": True}, "score"),
        ({"score": 1}, "request_id"),
        ({"request_id": "x", "score": 1, "comment": "meh"}, "comment"),
    ],
)
def test_bad_feedback_is_a_400_in_openai_format(rig: Rig, body: Json, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        feedback(rig, body)
    assert caught.value.body["param"] == param  # type: ignore[index]


def test_feedback_on_a_one_tier_route_says_why_it_is_refused(rig: Rig) -> None:
    ask(rig, "say hello", "one-tier-1", model="cheap-only")
    rig.gateway.ledger.flush()
    with pytest.raises(openai.BadRequestError, match="which has one tier"):
        feedback(rig, {"request_id": "one-tier-1", "score": "up"})


def test_feedback_reaches_a_request_this_replica_forgot_through_the_ledger(rig: Rig) -> None:
    ask(rig, "say hello", "forgotten-1", model="unsampled")
    assert rig.gateway.outcomes is not None
    rig.gateway.outcomes._recent.clear()  # as if another replica had served it
    rig.gateway.ledger.flush()
    assert feedback(rig, {"request_id": "forgotten-1", "score": "down"})["served"] == "cheap"
    assert rig.outcomes("forgotten-1")[0]["cheap_score"] == 0.0


def test_decision_metrics_are_exported(rig: Rig) -> None:
    ask(rig, "what is the sum of 4 and 4", "metrics-1")
    assert rig.wait_outcomes("metrics-1")
    text = httpx.get(f"{rig.url}/metrics").text
    assert 'hybridgate_router_tier_total{feature="none",route="auto",tier="cheap"}' in text
    assert 'hybridgate_outcomes_total{cheap="bad",feature="none",route="auto",served="cheap"}' in text
    regret = [
        line
        for line in text.splitlines()
        if line.startswith('hybridgate_router_regret{feature="none",route="auto"}')
    ]
    assert regret and 0 < float(regret[0].split()[-1]) < 1  # some judged bad, some good


def test_usage_and_the_dashboard_report_regret_and_strong_share(rig: Rig, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hybridgate.cli import app

    ask(rig, "what is the sum of 5 and 5", "report-bad")
    ask(rig, "say hello to the report", "report-good")
    assert rig.wait_outcomes("report-bad") and rig.wait_outcomes("report-good")
    rig.gateway.ledger.flush()
    config = tmp_path / "hybridgate.toml"
    config.write_text(
        '[backends.cheap]\ntype = "openai_compat"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        '[backends.strong]\ntype = "openai_compat"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        '[routes.auto]\ntry = ["cheap", "strong"]\n',
        encoding="utf-8",
    )
    args = ["usage", "--decisions", "--json", "--config", str(config), "--ledger", str(rig.ledger)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (auto,) = [r for r in json.loads(result.output) if r["route"] == "auto" and r["feature"] is None]
    graded = rig.outcomes_for_route("auto")
    bad = sum(1 for o in graded if o["cheap_score"] < 0.5)
    assert auto["graded_cheap"] == len(graded) and auto["regret"] == pytest.approx(bad / len(graded))
    assert 0 < auto["regret"] < 1 and auto["strong_share"] == 0.0 and auto["judge_cost_usd"] > 0
    text = CliRunner().invoke(app, args[:2] + args[3:]).output
    assert "DECISIONS" in text and "auto" in text
    dashboard = httpx.get(f"{rig.url}/ui/api/decisions").json()
    (row,) = [r for r in dashboard["rows"] if r["route"] == "auto" and r["feature"] is None]
    assert row["regret"] == pytest.approx(auto["regret"])
    dom = chromium(tmp_path, "--dump-dom", f"{rig.url}/ui").stdout  # the page renders the table
    assert 'data-state="ready"' in dom and f"<td>{100 * auto['regret']:.1f}%</td>" in dom


def test_a_streamed_answer_is_graded_too(rig: Rig) -> None:
    with rig.client() as client:
        chunks = client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "stream the sum of 6 and 7"}],
            stream=True,
            extra_headers={"x-request-id": "streamed-1"},
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("wrong")
    (outcome,) = rig.wait_outcomes("streamed-1")
    assert outcome["source"] == "judge" and outcome["cheap_score"] == 0.0


def test_with_auth_a_key_rates_only_its_own_requests_and_strangers_get_401(tmp_path: Path) -> None:
    pepper = {"HYBRIDGATE_KEY_PEPPER": "test-pepper-0123456789"}
    with run_openai_standin() as cheap, run_openai_standin() as strong:
        config = rig_config(cheap.base_url, strong.base_url, tmp_path / "gw.db", 0)
        config.auth.enabled, config.auth.keys_path = True, str(tmp_path / "keys.db")
        app = create_app(config, env=pepper)
        keys = app.state.gateway.access.keys
        (alice, _), (bob, _) = (keys.create(environment="default", name=n) for n in ("alice", "bob"))
        with serve_in_thread(app) as url:
            rig = Rig(url, app.state.gateway, cheap, strong, tmp_path / "gw.db")
            ask(rig, "say hello", "alice-1", model="unsampled", key=alice)
            with pytest.raises(openai.NotFoundError):
                feedback(rig, {"request_id": "alice-1", "score": "down"}, key=bob)
            with pytest.raises(openai.AuthenticationError):
                feedback(rig, {"request_id": "alice-1", "score": "down"}, key="made-up")
            assert rig.outcomes("alice-1") == []
            assert feedback(rig, {"request_id": "alice-1", "score": "up"}, key=alice)["score"] == 1.0
            (row,) = rig.outcomes("alice-1")
            assert row["cheap_score"] == 1.0 and row["api_key_id"] == rig.rows("alice-1")[0]["api_key_id"]


def test_with_log_prompts_the_outcome_keeps_the_prompt(rig: Rig) -> None:
    rig.gateway.config.ledger.log_prompts = True  # the sampler reads the gateway's own config
    try:
        ask(rig, "say hello with the prompt logged", "logged-1")
        (outcome,) = rig.wait_outcomes("logged-1")
    finally:
        rig.gateway.config.ledger.log_prompts = False
    assert outcome["prompt_text"] == "say hello with the prompt logged"


def test_a_prompt_with_pii_leaves_no_features_nor_text(tmp_path: Path) -> None:
    """The router's token n-grams are a bag of the prompt's words: a PII-bearing request graded by
    its checks is stored without them, and feedback's memory keeps no text of it."""
    import random
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry

    from hybridgate.ledger.decision_metrics import DecisionMetrics
    from hybridgate.ledger.outcomes import SqliteOutcomes
    from hybridgate.pipeline.outcomes import LiveAnswer, OutcomeSampler
    from hybridgate.types import ChatRequest, Decision, Message, RequestContext

    class NoFeatures:
        @property
        def featurizer(self) -> Any:
            raise AssertionError("features computed for a prompt with PII")

    config = rig_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", tmp_path / "gw.db", 100)
    store = SqliteOutcomes(str(tmp_path / "gw.db"))
    metrics = DecisionMetrics(CollectorRegistry(), lambda feature: "none")
    router: Any = SimpleNamespace(learned={"auto": NoFeatures()})
    sampler = OutcomeSampler(config, None, store, router, metrics, random.Random(0))  # type: ignore[arg-type]
    request = ChatRequest(model="auto", messages=[Message(role="user", content="mail jane.doe@example.com")])
    decision = Decision(route="auto", backends=("cheap", "strong"), rule="default", reasons=())

    async def run() -> list[Any]:
        ctx = RequestContext(request_id="pii-check", api_key_id="key_a")
        sampler.observe(LiveAnswer(request, ctx, decision, "strong", "ok", True, True, "allow"))
        await sampler.drain()
        return await store.outcomes("auto")

    (outcome,) = asyncio.run(run())
    assert outcome.source == "check" and outcome.cheap_score == 0.0 and outcome.features is None
    assert sampler._recent[("pii-check", "key_a")].text == ""


def test_an_anthropic_client_rates_its_answer_by_the_request_id_header(rig: Rig) -> None:
    import anthropic

    with anthropic.Anthropic(base_url=rig.url, api_key="k", max_retries=0) as client:
        message = client.messages.create(
            model="unsampled", max_tokens=32, messages=[{"role": "user", "content": "say hello"}]
        )
    request_id = message._request_id  # the SDK reads it from the `request-id` response header
    assert request_id and rig.rows(request_id)[0]["api"] == "anthropic"
    assert feedback(rig, {"request_id": request_id, "score": 0.75})["served"] == "cheap"
    assert rig.outcomes(request_id)[0]["cheap_score"] == 0.75


def test_a_burst_beyond_the_grading_bound_is_skipped_not_queued(rig: Rig) -> None:
    from hybridgate.pipeline.outcomes import MAX_GRADING

    sampler = rig.gateway.outcomes
    assert sampler is not None
    before = sampler.skipped
    rig.strong.script(*[Reply(content="the right answer", delay_s=5.0) for _ in range(MAX_GRADING)])
    ids = [f"burst-{i}" for i in range(MAX_GRADING + 5)]
    with rig.client() as client:
        for rid in ids:
            client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "say hi"}],
                extra_headers={"x-request-id": rid},
            )
    assert sampler.skipped - before >= 5  # the gradings past the bound were dropped
    assert len(sampler._tasks) <= MAX_GRADING
    for task in list(sampler._tasks):  # end the held gradings: the rig's shutdown would wait them out
        task.get_loop().call_soon_threadsafe(task.cancel)


def test_outcomes_on_a_one_tier_route_is_a_config_error() -> None:
    raw = rig_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", Path("gw.db"), 5).model_dump(
        by_alias=True
    )
    raw["routes"]["cheap-only"]["outcomes"] = {"sample_percent": 5}
    with pytest.raises(ValueError, match=r"routes\.cheap-only\.outcomes: grading needs two tiers"):
        GatewayConfig.model_validate(raw)
    raw["routes"]["cheap-only"]["outcomes"] = {"sample_percent": 101}
    with pytest.raises(ValueError, match="less than or equal to 100"):
        GatewayConfig.model_validate(raw)
