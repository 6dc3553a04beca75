"""The field table in code (wire/fields.py) and its copy in docs/compatibility.md agree, and it refuses."""

from __future__ import annotations

from pathlib import Path

from hybridgate.types import ChatRequest
from hybridgate.wire.anthropic_requests import from_anthropic_request
from hybridgate.wire.fields import FIELDS, markdown_table, refusal

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"


def test_the_docs_table_is_generated_from_the_code() -> None:
    text = DOC.read_text()
    between = text.split("<!-- fields:start -->\n", 1)[1].split("<!-- fields:end -->", 1)[0]
    assert between.strip() == markdown_table().strip(), "regenerate the table in docs/compatibility.md"


def test_every_refused_cell_can_be_enforced() -> None:
    for field in FIELDS:
        if any(field.cell(tier).handling == "refused" for tier in ("embedded", "openai_compat", "anthropic")):
            assert field.used is not None, f"'{field.name}' is refused somewhere but never checked"


def chat(**extra: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    )


def test_refusals_name_the_field_per_backend_kind() -> None:
    assert refusal(chat(logit_bias={"1": 5}), "openai_compat") is None
    refused = refusal(chat(logit_bias={"1": 5}), "embedded")
    assert refused is not None and refused.param == "logit_bias" and refused.status_code == 400
    assert refusal(chat(top_k=5), "anthropic") is None  # translated
    unknown = refusal(chat(made_up_field=1), "anthropic")
    assert unknown is not None and unknown.param == "made_up_field"


def test_anthropic_only_fields_are_refused_only_where_they_cannot_be_served() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "mcp_servers": []}
    request = from_anthropic_request(body)
    assert refusal(request, "anthropic") is None
    refused = refusal(request, "embedded")
    assert refused is not None and refused.param == "mcp_servers"
    plain = {k: v for k, v in body.items() if k != "mcp_servers"}
    hints = from_anthropic_request({**plain, "service_tier": "auto", "thinking": {"type": "disabled"}})
    assert refusal(hints, "embedded") is None  # hints: ignored there, documented as such
