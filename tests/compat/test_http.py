"""Browsers and HTTP: CORS, compressed request bodies, ``n > 1``; plain httpx and the openai SDK.

Stand-ins (tests/compat/conftest.py) answer upstream; the gateway is the real app on loopback.
"""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import openai
import pytest
import zstandard

from tests.api.conftest import Rig
from tests.compat.conftest import MAX_BODY, ORIGIN

CHAT = {"model": "fast", "messages": [{"role": "user", "content": "hello compressed"}]}


def test_cors_preflight_is_answered_for_a_configured_origin(gw: Rig) -> None:
    response = httpx.options(
        f"{gw.url}/v1/chat/completions",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, x-stainless-os",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in response.headers


def test_cors_answers_expose_the_decision_headers(gw: Rig) -> None:
    response = httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers={"origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "x-hybridgate-route" in response.headers["access-control-expose-headers"]


def test_cors_refuses_other_origins(gw: Rig) -> None:
    response = httpx.options(
        f"{gw.url}/v1/chat/completions",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("zstd", lambda data: zstandard.ZstdCompressor().compress(data)),
    ],
)
def test_compressed_bodies_are_decoded(gw: Rig, encoding: str, compress: object) -> None:
    assert callable(compress)
    body = compress(json.dumps(CHAT).encode())
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        content=body,
        headers={"content-encoding": encoding, "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert gw.secondary.last_request.body["messages"][0]["content"] == "hello compressed"


def test_a_zip_bomb_gets_a_413(gw: Rig) -> None:
    padding = " " * (MAX_BODY * 50)
    bomb = gzip.compress(json.dumps({**CHAT, "pad": padding}).encode())
    assert len(bomb) < MAX_BODY
    response = httpx.post(f"{gw.url}/v1/chat/completions", content=bomb, headers={"content-encoding": "gzip"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_corrupt_and_unknown_encodings_are_4xx(gw: Rig) -> None:
    corrupt = httpx.post(
        f"{gw.url}/v1/chat/completions", content=b"not gzip", headers={"content-encoding": "gzip"}
    )
    unknown = httpx.post(f"{gw.url}/v1/chat/completions", content=b"{}", headers={"content-encoding": "br"})
    assert corrupt.status_code == 400 and "gzip" in corrupt.json()["error"]["message"]
    assert unknown.status_code == 415


def test_n_is_served_by_repeated_calls_on_anthropic(gw: Rig, oai: openai.OpenAI) -> None:
    before = len(gw.claude.requests)  # this stand-in keeps its records across tests
    reply = oai.chat.completions.create(
        model="claude", n=3, messages=[{"role": "user", "content": "three answers please"}]
    )
    assert [choice.index for choice in reply.choices] == [0, 1, 2]
    assert len(gw.claude.requests) - before == 3
    words = len((reply.choices[0].message.content or "").split())  # the stand-in counts words
    assert reply.usage is not None and reply.usage.completion_tokens == 3 * words


def test_n_is_passed_to_openai_shaped_backends(gw: Rig, oai: openai.OpenAI) -> None:
    oai.chat.completions.create(model="fast", n=2, messages=[{"role": "user", "content": "two"}])
    assert gw.secondary.last_request.body["n"] == 2


def test_n_with_stream_is_refused_naming_the_field_where_no_backend_can(gw: Rig, oai: openai.OpenAI) -> None:
    before = len(gw.claude.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="claude", n=2, stream=True, messages=[{"role": "user", "content": "two"}]
        )
    assert "n > 1 with stream" in str(caught.value)
    assert len(gw.claude.requests) == before
