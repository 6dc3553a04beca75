"""``POST /v1/embeddings`` end to end: the official openai SDK against the real gateway on loopback.

Stand-ins: ``cloud``, ``cloud_b`` and ``onprem`` are OpenAI-compatible embeddings stand-in servers
(tests/standins/openai_embeddings.py), not OpenAI; ``cloud`` and ``cloud_b`` serve the same model
(a fallback pair), ``onprem`` serves it too but is marked ``local``. The ``wl`` embedder is the real
WordLlama embedder, checked against the ``wordllama`` package's own ``embed``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_embeddings import EmbeddingsStandIn, run_embeddings_standin, vector_for

ENV = {"EMB_KEY": "sk-emb"}
MODEL = "text-embedding-3-small"


@dataclass
class EmbRig:
    url: str
    gateway: Gateway
    cloud: EmbeddingsStandIn
    cloud_b: EmbeddingsStandIn
    onprem: EmbeddingsStandIn

    def rows(self) -> list[dict[str, Any]]:
        self.gateway.ledger.flush()
        return [r for r in reversed(self.gateway.ledger.recent(1000)) if r["api"] == "embeddings"]


def _cloud(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "openai_compat",
        "base_url": url,
        "model": MODEL,
        "api_key_env": "EMB_KEY",
        "provider": "openai",
        "dimensions": True,
        "tokens": True,
        **extra,
    }


def emb_config(cloud: str, cloud_b: str, onprem: str, ledger: Path) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "environment": "test",
            "ledger": {"path": str(ledger), "flush_interval_s": 0.05},
            "backends": {"local": {"type": "embedded"}},
            "routes": {"auto": {"try": ["local"]}},
            "cache": {"store": "memory"},
            "privacy": {"ner_model": None, "features": {"hr": "local_only", "support": "redact"}},
            "embeddings": {
                "backends": {
                    "wl": {"type": "wordllama"},
                    "cloud": _cloud(cloud, max_batch=2, max_concurrency=2),
                    "cloud-b": _cloud(cloud_b),
                    "onprem": _cloud(onprem, local=True),
                },
                "routes": {
                    "local": {"try": ["wl"]},
                    "cloud": {"try": ["cloud", "cloud-b"]},
                    "mixed": {"try": ["cloud", "onprem"]},
                },
                "default_route": "local",
                "max_inputs": 8,
            },
        }
    )


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbRig]:
    ledger = tmp_path_factory.mktemp("emb") / "gw.db"
    with (
        run_embeddings_standin(api_key="sk-emb") as cloud,
        run_embeddings_standin(api_key="sk-emb") as cloud_b,
        run_embeddings_standin(api_key="sk-emb") as onprem,
    ):
        app = create_app(emb_config(cloud.base_url, cloud_b.base_url, onprem.base_url, ledger), env=ENV)
        with serve_in_thread(app) as url:
            yield EmbRig(url, app.state.gateway, cloud, cloud_b, onprem)


@pytest.fixture
def gw(rig: EmbRig) -> EmbRig:
    for standin in (rig.cloud, rig.cloud_b, rig.onprem):
        standin.reset()
    return rig


@pytest.fixture
def oai(rig: EmbRig) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{rig.url}/v1", api_key="caller", max_retries=0) as client:
        yield client


def unique(tag: str) -> str:
    # Letters only: a run of random hex digits can read as a phone or card number, and a text
    # with PII findings is never cached (about one run in fifty failed that way).
    return f"{tag} {''.join(chr(ord('a') + b % 26) for b in os.urandom(12))}"


def test_embedded_default_matches_wordllama_and_names_the_default_route(
    gw: EmbRig, oai: openai.OpenAI
) -> None:
    import wordllama
    from wordllama import WordLlama

    texts = ["The cat sat on the mat.", "Quarterly revenue grew by 12 percent."]
    raw = oai.embeddings.with_raw_response.create(
        model="nomic-embed-text", input=texts, encoding_format="float"
    )
    answer = raw.parse()
    assert raw.headers["x-hybridgate-route"] == "local" and raw.headers["x-hybridgate-backend"] == "wl"
    assert answer.model == "wordllama-l2-supercat-256" and len(answer.data) == 2
    reference = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)
    expected = reference.embed(texts, norm=True)
    for item, want in zip(answer.data, expected, strict=True):
        got = np.asarray(item.embedding)
        assert got.shape == (256,) and abs(np.linalg.norm(got) - 1) < 1e-5
        assert float(np.dot(got, want / np.linalg.norm(want))) > 0.9999
    assert answer.usage.prompt_tokens > 0 and answer.usage.total_tokens == answer.usage.prompt_tokens
    row = gw.rows()[-1]
    assert row["texts"] == 2 and row["route"] == "local" and row["rule"] == "default"
    assert any("nomic-embed-text" in reason for reason in row["reasons"])


def test_base64_is_what_the_sdk_asks_for_by_default_and_equals_floats(gw: EmbRig, oai: openai.OpenAI) -> None:
    text = unique("base64 check")
    as_floats = oai.embeddings.create(model="local", input=text, encoding_format="float").data[0].embedding
    default = oai.embeddings.create(model="local", input=text).data[0].embedding  # SDK: base64, decoded
    assert np.array_equal(np.asarray(as_floats, np.float32), np.asarray(default, np.float32))


def test_dimensions_truncate_and_renormalise_on_wordllama(gw: EmbRig, oai: openai.OpenAI) -> None:
    text = unique("matryoshka")
    full = np.asarray(
        oai.embeddings.create(model="local", input=text, encoding_format="float").data[0].embedding
    )
    cut = np.asarray(
        oai.embeddings.create(model="local", input=text, dimensions=64, encoding_format="float")
        .data[0]
        .embedding
    )
    assert cut.shape == (64,)
    assert np.allclose(cut, full[:64] / np.linalg.norm(full[:64]), atol=1e-6)


def test_a_real_model_name_goes_to_the_embedder_that_serves_it_and_the_stand_in_sees_the_texts(
    gw: EmbRig, oai: openai.OpenAI
) -> None:
    texts = [unique("alpha"), unique("beta")]
    raw = oai.embeddings.with_raw_response.create(model=MODEL, input=texts, encoding_format="float")
    answer = raw.parse()
    assert raw.headers["x-hybridgate-route"] == "cloud"
    assert gw.cloud.texts_received() == texts
    for item, text in zip(answer.data, texts, strict=True):
        assert np.array_equal(np.asarray(item.embedding, np.float32), vector_for(text, 64))
    assert answer.model == MODEL


def test_cache_answers_repeats_bit_for_bit_and_sends_only_misses_upstream(
    gw: EmbRig, oai: openai.OpenAI
) -> None:
    old = [unique("cached one"), unique("cached two")]
    first = oai.embeddings.create(model="cloud", input=old, encoding_format="float")
    assert len(gw.cloud.requests) == 1
    gw.cloud.reset()
    raw = oai.embeddings.with_raw_response.create(model="cloud", input=old, encoding_format="float")
    again = raw.parse()
    assert raw.headers["x-hybridgate-cache"] == "hit" and gw.cloud.requests == []
    for a, b in zip(first.data, again.data, strict=True):
        assert np.asarray(a.embedding).tobytes() == np.asarray(b.embedding).tobytes()
    assert again.usage.prompt_tokens == first.usage.prompt_tokens  # the caller's usage counts hits too
    new = [unique("fresh one"), unique("fresh two"), unique("fresh three")]
    mixed = [new[0], old[0], new[1], old[1], new[2]]
    raw = oai.embeddings.with_raw_response.create(model="cloud", input=mixed, encoding_format="float")
    answer = raw.parse()
    assert raw.headers["x-hybridgate-cache"] == "partial"
    assert sorted(gw.cloud.texts_received()) == sorted(new)  # only the misses went upstream...
    assert all(len(body["input"]) <= 2 for body in gw.cloud.requests)  # ...in batches of max_batch
    for item, text in zip(answer.data, mixed, strict=True):
        assert np.array_equal(np.asarray(item.embedding, np.float32), vector_for(text, 64))
    rows = gw.rows()
    assert rows[-2]["cache"] == "hit" and rows[-2]["cost_usd"] == 0 and rows[-2]["saved_usd"] > 0
    assert rows[-1]["cache"] == "partial" and rows[-1]["texts"] == 5 and rows[-1]["cached_texts"] == 2
    assert rows[-1]["prompt_tokens"] == 3 * 3 and rows[-1]["cost_usd"] > 0  # 3 words per fresh text


def test_cache_is_per_tenant_and_per_dimensions(gw: EmbRig, rig: EmbRig) -> None:
    text = unique("tenant")
    for key in ("tenant-a", "tenant-b"):
        with openai.OpenAI(base_url=f"{rig.url}/v1", api_key=key, max_retries=0) as client:
            client.embeddings.create(model="cloud", input=text)
    client = openai.OpenAI(base_url=f"{rig.url}/v1", api_key="tenant-a", max_retries=0)
    client.embeddings.create(model="cloud", input=text, dimensions=16)
    assert len(gw.cloud.requests) == 3


def test_a_failing_embedder_falls_back_to_one_serving_the_same_model(gw: EmbRig, oai: openai.OpenAI) -> None:
    gw.cloud.fail_next(503)
    text = unique("fallback")
    answer = oai.embeddings.create(model="cloud", input=text, encoding_format="float")
    assert gw.cloud_b.texts_received() == [text]
    assert np.array_equal(np.asarray(answer.data[0].embedding, np.float32), vector_for(text, 64))
    assert gw.rows()[-1]["attempts"] == ["cloud:error:server_error", "cloud-b:ok"]


def test_an_upstream_400_is_the_callers_400_and_is_not_retried_elsewhere(
    gw: EmbRig, oai: openai.OpenAI
) -> None:
    gw.cloud.fail_next(400)
    with pytest.raises(openai.BadRequestError) as caught:
        oai.embeddings.create(model="cloud", input=unique("too long, says the upstream"))
    assert "scripted failure" in caught.value.message and "127.0.0.1" not in caught.value.message
    assert gw.cloud_b.requests == []


def test_upstream_garbage_is_a_protocol_error_that_falls_back(gw: EmbRig, oai: openai.OpenAI) -> None:
    gw.cloud.fail_next("garbage")
    text = unique("garbage")
    oai.embeddings.create(model="cloud", input=text)
    assert gw.cloud_b.texts_received() == [text]


def test_upstream_auth_failure_is_a_502_without_the_key_hint(gw: EmbRig, oai: openai.OpenAI) -> None:
    gw.cloud.fail_next(401)
    gw.cloud_b.fail_next(401)
    with pytest.raises(openai.APIStatusError) as caught:
        oai.embeddings.create(model="cloud", input=unique("auth"))
    assert caught.value.status_code == 502
    assert "sk-" not in caught.value.message and "upstream authentication failed" in caught.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "local", "input": ""}, "input"),
        ({"model": "local", "input": []}, "input"),
        ({"model": "local", "input": ["ok", 5]}, "input"),
        ({"model": "local", "input": ["ok", [1, 2]]}, "input"),
        ({"model": "local", "input": ["x"] * 9}, "input"),
        ({"model": "local", "input": [[1, 2, 3]]}, "input"),  # WordLlama takes texts only
        ({"model": "local", "input": "x", "dimensions": 300}, "dimensions"),
        ({"model": "cloud", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "local", "input": "x", "colour": "blue"}, "colour"),
        ({"model": "cloud/other-model", "input": "x"}, "model"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    gw: EmbRig, oai: openai.OpenAI, body: dict[str, Any], param: str
) -> None:
    before = len(gw.rows())
    with pytest.raises(openai.APIStatusError) as caught:
        oai.post("/embeddings", body=body, cast_to=object)
    assert caught.value.status_code in (400, 404)
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == param, error
    assert gw.cloud.requests == [] and len(gw.rows()) == before + 1  # refused, and still recorded


def test_token_arrays_pass_to_an_embedder_that_takes_them(gw: EmbRig, oai: openai.OpenAI) -> None:
    answer = oai.embeddings.create(model=MODEL, input=[[101, 2023, 102], [7, 8]], encoding_format="float")
    assert gw.cloud.texts_received() == [[101, 2023, 102], [7, 8]]
    assert answer.usage.prompt_tokens == 5


def test_pii_under_local_only_reaches_only_the_local_embedder(gw: EmbRig, oai: openai.OpenAI) -> None:
    text = f"Write to jane.doe@example.com about invoice {os.urandom(3).hex()}"
    raw = oai.embeddings.with_raw_response.create(
        model="mixed", input=text, extra_headers={"x-hybridgate-feature": "hr"}
    )
    assert raw.headers["x-hybridgate-backend"] == "onprem"
    assert gw.onprem.texts_received() == [text] and gw.cloud.requests == []
    row = gw.rows()[-1]
    assert row["privacy"] == "local_only" and "EMAIL" in (row["pii"] or "")
    assert row["cache"] is None  # texts with PII are not cached (cache_pii = false)


def test_pii_under_local_only_with_no_local_embedder_is_refused(gw: EmbRig, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        oai.embeddings.create(
            model="cloud",
            input="my card is 4111 1111 1111 1111",
            extra_headers={"x-hybridgate-feature": "hr"},
        )
    assert gw.cloud.requests == [] and gw.cloud_b.requests == []
    assert gw.rows()[-1]["egress"] == ["cloud:live:blocked", "cloud-b:live:blocked"]  # the egress gate


def test_pii_under_redact_sends_placeholders(gw: EmbRig, oai: openai.OpenAI) -> None:
    oai.embeddings.create(
        model="cloud",
        input="Contact jane.doe@example.com today",
        extra_headers={"x-hybridgate-feature": "support"},
    )
    (sent,) = gw.cloud.texts_received()
    assert "jane.doe@example.com" not in sent and sent.startswith("Contact ")
    assert gw.rows()[-1]["egress"] == ["cloud:live:redacted"]


def test_models_list_names_embedding_models(gw: EmbRig, oai: openai.OpenAI) -> None:
    ids = {model.id for model in oai.models.list()}
    assert {MODEL, "wordllama-l2-supercat-256"} <= ids


def test_base64_answer_decodes_to_little_endian_float32(gw: EmbRig, rig: EmbRig) -> None:
    import httpx

    text = unique("raw base64")
    body = {"model": MODEL, "input": [text], "encoding_format": "base64"}
    data = httpx.post(f"{rig.url}/v1/embeddings", json=body, timeout=10).json()
    raw = base64.b64decode(data["data"][0]["embedding"])
    assert np.array_equal(np.frombuffer(raw, "<f4"), vector_for(text, 64))


def test_langchain_openai_embeddings_through_the_gateway(gw: EmbRig, rig: EmbRig) -> None:
    from langchain_openai import OpenAIEmbeddings
    from pydantic import SecretStr

    # check_embedding_ctx_length=False: with True, LangChain tokenises with tiktoken first, which
    # downloads its encoding files (no network here); the texts then go as they are.
    embedder = OpenAIEmbeddings(
        model=MODEL,
        base_url=f"{rig.url}/v1",
        api_key=SecretStr("caller"),
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    docs = [unique("langchain doc one"), unique("langchain doc two")]
    vectors = embedder.embed_documents(docs)
    query = embedder.embed_query(docs[0])
    assert gw.cloud.texts_received() == docs  # the query was a cache hit
    for vector, text in zip(vectors, docs, strict=True):
        assert np.array_equal(np.asarray(vector, np.float32), vector_for(text, 64))
    assert np.array_equal(np.asarray(query, np.float32), np.asarray(vectors[0], np.float32))
