"""Shadow traffic: a sampled copy goes to a candidate route in the background and never changes
the client's answer. Upstreams are OpenAI-compatible stand-ins on loopback (not OpenAI)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import Fail, OpenAIStandIn, Reply, run_openai_standin

Rig = tuple[openai.OpenAI, Gateway, OpenAIStandIn, OpenAIStandIn]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    ledger = tmp_path_factory.mktemp("shadow") / "gw.db"
    with run_openai_standin() as live, run_openai_standin() as candidate:
        remote = {"type": "openai_compat", "model": "m", "timeout_s": 5}
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(ledger), "flush_interval_s": 0.05},
                "backends": {
                    "live": {**remote, "base_url": live.base_url},
                    "candidate": {**remote, "base_url": candidate.base_url},
                },
                "routes": {
                    "auto": {"try": ["live"], "shadow": {"route": "candidate", "percent": 100}},
                    "candidate": {"try": ["candidate"]},
                    "unshadowed": {"try": ["live"]},
                },
            }
        )
        app = create_app(config, env={})
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            yield client, app.state.gateway, live, candidate


def rows(gateway: Gateway, request_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        gateway.ledger.flush()
        found = [r for r in gateway.ledger.recent(50) if r["request_id"].startswith(request_id)]
        if len(found) == 2 or time.monotonic() > deadline:
            return found


def ask(client: openai.OpenAI, request_id: str, model: str = "auto", stream: bool = False) -> str:
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    headers = {"x-request-id": request_id}
    if stream:
        chunks = client.chat.completions.create(
            model=model, messages=messages, stream=True, extra_headers=headers
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reply = client.chat.completions.create(model=model, messages=messages, extra_headers=headers)
    return reply.choices[0].message.content or ""


@pytest.mark.parametrize("stream", [False, True])
def test_shadow_copy_is_recorded_beside_the_live_answer(rig: Rig, stream: bool) -> None:
    client, gateway, _, candidate = rig
    candidate.script(Reply(content="candidate says something else"))
    assert ask(client, f"live-{stream}", stream=stream) == "echo: hi"
    live_row, shadow_row = sorted(rows(gateway, f"live-{stream}"), key=lambda r: r["shadow_of"] or "")
    assert live_row["backend"] == "live" and live_row["shadow_of"] is None
    assert shadow_row["backend"] == "candidate" and shadow_row["shadow_of"] == f"live-{stream}"
    assert shadow_row["rule"] == "override" and not shadow_row["stream"]


def test_failing_slow_shadow_never_touches_the_client(rig: Rig) -> None:
    client, gateway, _, candidate = rig
    candidate.script(Fail(status=500, type="server_error", delay_s=1.0))
    started = time.perf_counter()
    assert ask(client, "slow-shadow") == "echo: hi"
    assert time.perf_counter() - started < 0.9  # the answer did not wait for the shadow's 1 s
    by_kind = {bool(r["shadow_of"]): r for r in rows(gateway, "slow-shadow")}
    assert by_kind[False]["status"] == 200 and by_kind[True]["status"] == 500


def test_routes_without_shadow_are_not_copied(rig: Rig) -> None:
    client, gateway, _, candidate = rig
    candidate.script(Reply(content="candidate"))
    before = len(candidate.requests)
    ask(client, "plain", model="unshadowed")
    # A shadowed request after it: copies start in the order the live answers are ready, so once
    # this later copy has reached the candidate and its ledger, a copy of "plain" would have too.
    ask(client, "marker")
    assert {bool(r["shadow_of"]) for r in rows(gateway, "marker")} == {False, True}
    assert len(candidate.requests) == before + 1  # the marker's copy, and only it
    gateway.ledger.flush()
    plain = [r for r in gateway.ledger.recent(50) if r["request_id"].startswith("plain")]
    assert [r["shadow_of"] for r in plain] == [None]  # the live row alone


def test_shadow_rows_are_their_own_traffic_class_and_not_live_demand(rig: Rig) -> None:
    client, gateway, _, candidate = rig
    candidate.script(Reply(content="candidate"))
    ask(client, "classed")
    by_kind = {bool(r["shadow_of"]): r for r in rows(gateway, "classed")}
    assert by_kind[False]["traffic"] == "live" and by_kind[True]["traffic"] == "shadow"
    live = {r["route"]: r["requests"] for r in gateway.ledger.usage("route")}
    every = {r["route"]: r["requests"] for r in gateway.ledger.usage("route", traffic=None)}
    assert "candidate" not in live and every["candidate"] >= 1  # only shadow copies went there
    classes = {r["traffic"]: r["requests"] for r in gateway.ledger.usage("traffic", traffic=None)}
    assert classes["shadow"] >= 1 and classes["live"] >= 1
