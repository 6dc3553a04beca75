"""Real model names through the official SDKs: the names apps, SDK examples and agents send.

Stand-ins (tests/compat/conftest.py): ``primary`` serves gpt-4o-mini in OpenAI's format,
``secondary`` is an OpenAI-compatible local server, ``claude`` speaks Anthropic's format.
"""

from __future__ import annotations

import anthropic
import httpx
import openai

from tests.api.conftest import Rig
from tests.standins.openai_upstream import Fail


def test_a_backends_upstream_model_is_served_by_that_backend(gw: Rig, oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-hybridgate-backend"] == "primary"
    assert raw.parse().choices[0].message.content
    assert gw.primary.last_request.body["model"] == "gpt-4o-mini"
    assert not gw.secondary.requests


def test_a_backends_upstream_model_falls_back_along_its_route(gw: Rig, oai: openai.OpenAI) -> None:
    gw.primary.script(Fail(status=503, type="server_error"))
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-hybridgate-backend"] == "secondary"  # the rest of route auto
    assert gw.ledger_rows()[-1]["attempts"] == ["primary:error:server_error", "secondary:ok"]


def test_a_provider_family_name_goes_to_that_providers_backend(gw: Rig, oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-hybridgate-backend"] == "primary"
    assert raw.headers["x-hybridgate-rule"] == "family:openai"
    assert gw.primary.last_request.body["model"] == "gpt-4o"  # the model asked for, not the default


def test_a_claude_name_reaches_the_anthropic_backend_with_that_model(
    gw: Rig, claude: anthropic.Anthropic
) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hello there"}]
    )
    assert message.content[0].type == "text"
    assert gw.claude.last_request.body["model"] == "claude-sonnet-4-5"


def test_aliases_exact_and_glob_name_routes(gw: Rig, oai: openai.OpenAI) -> None:
    exact = oai.chat.completions.with_raw_response.create(
        model="my-app-model", messages=[{"role": "user", "content": "hi"}]
    )
    glob = oai.chat.completions.with_raw_response.create(
        model="team-writer-v2", messages=[{"role": "user", "content": "hi"}]
    )
    assert (exact.headers["x-hybridgate-route"], exact.headers["x-hybridgate-backend"]) == (
        "claude",
        "claude",
    )
    assert (glob.headers["x-hybridgate-route"], glob.headers["x-hybridgate-rule"]) == ("fast", "alias:team-*")


def test_an_unknown_name_is_served_as_auto_and_says_so(gw: Rig, oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="some-model-nobody-configured", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-hybridgate-route"] == "auto"
    row = gw.ledger_rows()[-1]
    assert any("unknown_models" in reason for reason in row["reasons"])


def test_models_list_names_aliases_and_upstream_models(gw: Rig, oai: openai.OpenAI) -> None:
    ids = {model.id for model in oai.models.list()}
    assert {"auto", "claude", "my-app-model", "gpt-4o-mini", "backup-model", "primary/gpt-4o-mini"} <= ids
    assert "team-*" not in ids  # a glob is not a model id
    assert oai.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    assert oai.models.retrieve("gpt-4.1").id == "gpt-4.1"  # a family name the gateway serves
    try:
        oai.models.retrieve("nothing-like-this")
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("an unknown model id must be a 404")


def test_models_in_anthropics_shape_for_the_anthropic_sdk(gw: Rig, claude: anthropic.Anthropic) -> None:
    page = claude.models.list()
    ids = [model.id for model in page.data]
    assert "claude-haiku-4-5" in ids and "my-app-model" in ids
    assert all(model.type == "model" and model.display_name for model in page.data)
    assert page.first_id == ids[0] and page.last_id == ids[-1] and page.has_more is False
    assert claude.models.retrieve("claude-haiku-4-5").id == "claude-haiku-4-5"


def test_models_list_without_anthropic_version_stays_openai_shaped(gw: Rig) -> None:
    body = httpx.get(f"{gw.url}/v1/models").json()
    assert body["object"] == "list" and body["data"][0]["object"] == "model"


def test_anthropic_models_pass_the_sdks_strict_validation_and_paginate(gw: Rig) -> None:
    """Strict response validation (as the SDK's own tests use) requires every ModelInfo field,
    ``lifecycle`` included; ``limit`` / ``after_id`` / ``before_id`` page as Anthropic's API does."""
    with anthropic.Anthropic(
        base_url=gw.url, api_key="caller-key", max_retries=0, _strict_response_validation=True
    ) as strict:
        everything = [model.id for model in strict.models.list(limit=1000).data]
        assert strict.models.retrieve("claude-haiku-4-5").lifecycle == "active"
        first = strict.models.list(limit=2)
        assert [m.id for m in first.data] == everything[:2] and first.has_more is True
        assert [m.id for m in strict.models.list(limit=2, after_id=everything[1]).data] == everything[2:4]
        assert [m.id for m in strict.models.list(limit=1, before_id=everything[2]).data] == [everything[1]]
        assert [m.id for m in strict.models.list(limit=1)] == everything  # the SDK follows the cursor
        unknown = strict.models.list(after_id="no-such-model")
        assert unknown.data == [] and unknown.has_more is False
        try:
            strict.models.list(limit=0)
        except anthropic.BadRequestError as exc:
            assert "limit" in str(exc)
        else:
            raise AssertionError("limit=0 must be a 400")
