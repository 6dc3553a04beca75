"""Every request leaves one ledger row, not only completions: unknown paths (404), wrong methods
(405), the model list and token counts. The gateway is the real app on loopback (tests/api/conftest.py);
its upstreams are stand-ins, though none of these requests reaches them."""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
import httpx
import openai

from tests.api.conftest import Rig


def rows_for(rig: Rig, request_id: str) -> list[dict[str, Any]]:
    return [row for row in rig.ledger_rows() if row["request_id"] == request_id]


def test_unknown_paths_and_methods_are_answered_in_the_wire_format_and_recorded(gw: Rig) -> None:
    cases = [
        ("GET", "/v1/nope", 404, "openai"),
        ("POST", "/v1/messages/nope", 404, "anthropic"),
        ("PUT", "/v1/chat/completions", 405, "openai"),  # GET lists stored completions
        ("DELETE", "/v1/messages", 405, "anthropic"),
        ("GET", "/no/such/thing", 404, "openai"),
    ]
    for method, path, status, api in cases:
        request_id = f"req-{uuid.uuid4().hex}"
        response = httpx.request(method, f"{gw.url}{path}", headers={"x-request-id": request_id})
        assert response.status_code == status
        body = response.json()
        message = body["error"]["message"]
        assert f"no endpoint {method} {path}" in message
        assert (body.get("type") == "error") == (api == "anthropic")  # Anthropic's envelope, or OpenAI's
        [row] = rows_for(gw, request_id)
        assert (row["status"], row["api"], row["error_type"]) == (status, api, "invalid_request_error")


def test_model_lists_and_token_counts_are_recorded(
    gw: Rig, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    listed = oai.models.with_raw_response.list(extra_headers={"x-request-id": "list-models-1"})
    assert any(model.id == "auto" for model in listed.parse().data)
    counted = claude.messages.count_tokens(
        model="auto",
        messages=[{"role": "user", "content": "how many tokens is this"}],
        extra_headers={"x-request-id": "count-1"},
    )
    assert counted.input_tokens > 0
    with httpx.Client() as http:
        bad = http.post(
            f"{gw.url}/v1/messages/count_tokens", content=b"{", headers={"x-request-id": "count-2"}
        )
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    [models] = rows_for(gw, "list-models-1")
    [count] = rows_for(gw, "count-1")
    [refused] = rows_for(gw, "count-2")
    assert (models["status"], models["api"], models["cost_usd"]) == (200, "openai", 0.0)
    assert (count["status"], count["api"], count["prompt_hash"] is not None) == (200, "anthropic", True)
    assert (refused["status"], refused["error_type"]) == (400, "invalid_request_error")
