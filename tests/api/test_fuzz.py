"""Property-based fuzzing of both wire APIs over real HTTP: malformed input never earns a 5xx.

Hypothesis sends structurally plausible but wrong chat-completions and Messages requests (see
``fuzz_bodies.py``), raw bytes, odd content types and odd headers to the real gateway on loopback,
which sits in front of stand-in upstreams (``conftest.py``: OpenAI- and Anthropic-shaped test
servers, not the real providers). Valid requests may reach a stand-in and come back 200; that is
fine. What must hold for every request:

- the status is never 5xx (the stand-ins answer every valid request, so a 5xx is the gateway's);
- an error body is well-formed in the caller's format (OpenAI ``{"error": {...}}`` on
  ``/v1/chat/completions``, Anthropic ``{"type": "error", ...}`` on ``/v1/messages``), and a
  stream's error event too;
- no traceback text leaks;
- every request that reached a chat endpoint left exactly one ledger row.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Rig
from tests.api.fuzz_bodies import chat_requests, deep_nesting, encoded, json_values, messages_requests

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
# Bounded so the whole file runs in well under a minute; generating these bodies dominates.
FUZZ = settings(
    max_examples=int(os.environ.get("HYBRIDGATE_FUZZ_EXAMPLES", "150")),  # raise it for a deep run
    deadline=None,
    # No "explain" phase: on Python 3.11 it can die in ast with "recursion depth mismatch".
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
LIGHT = settings(FUZZ, max_examples=max(1, FUZZ.max_examples * 2 // 5))
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "",
]
# Header values: Latin-1 text, no control characters or outer spaces (httpx refuses those).
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")).map(
    str.strip
)


@pytest.fixture
def client(gw: Rig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        yield client


def check_openai_error(error: Any) -> None:
    assert isinstance(error, dict), error
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str | int)


def check_anthropic_error(body: Any) -> None:
    assert isinstance(body, dict) and body.get("type") == "error", body
    error = body["error"]
    assert set(error) == {"type", "message"}, error
    assert isinstance(error["type"], str) and isinstance(error["message"], str) and error["message"]


def check_sse(text: str, anthropic: bool) -> None:
    """Any error event inside a 200 stream is well-formed too."""
    for line in text.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = orjson.loads(line[6:])
        if anthropic and event.get("type") == "error":
            check_anthropic_error(event)
        elif not anthropic and "error" in event:
            check_openai_error(event["error"])


def check_response(response: httpx.Response) -> None:
    path = response.request.url.path
    anthropic = path.startswith(MESSAGES)
    where = f"{response.request.method} {path} -> {response.status_code}: {response.text[:300]!r}"
    assert response.status_code < 500, where
    assert "Traceback" not in response.text, where
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        assert response.status_code == 200, where
        check_sse(response.text, anthropic)
        return
    assert content_type.startswith("application/json"), where
    body = orjson.loads(response.content)
    if response.status_code < 400:
        return
    if anthropic:
        check_anthropic_error(body)
    else:
        assert isinstance(body, dict) and set(body) == {"error"}, where
        check_openai_error(body["error"])


def ledger_counts(rig: Rig, request_ids: list[str]) -> dict[str, int]:
    assert rig.gateway.ledger.flush(timeout=10)
    with closing(sqlite3.connect(rig.gateway.config.ledger.path)) as conn:
        rows = conn.execute("SELECT request_id FROM requests WHERE request_id LIKE 'fuzz-%'").fetchall()
    counts = dict.fromkeys(request_ids, 0)
    for (request_id,) in rows:
        if request_id in counts:
            counts[request_id] += 1
    return counts


def fuzz_endpoint(
    gw: Rig,
    client: httpx.Client,
    path: str,
    bodies: st.SearchStrategy[bytes],
    budget: settings = FUZZ,
    known: tuple[bytes, ...] = (),
) -> None:
    """Send fuzzed bodies (and ``known`` past failures first) to ``path``, then check each
    reached the ledger exactly once."""
    sent: list[str] = []

    def run(body: bytes) -> None:
        request_id = f"fuzz-{uuid.uuid4().hex}"
        sent.append(request_id)
        headers = {"content-type": "application/json", "x-request-id": request_id}
        check_response(client.post(path, content=body, headers=headers))

    for body in known:
        run = example(body=body)(run)
    budget(given(body=bodies)(run))()
    assert len(sent) >= budget.max_examples  # the fuzzing did run, in full
    lost_or_doubled = {k: v for k, v in ledger_counts(gw, sent).items() if v != 1}
    assert not lost_or_doubled, f"{len(lost_or_doubled)} of {len(sent)} requests: {lost_or_doubled}"


def test_chat_completions_never_5xx(gw: Rig, client: httpx.Client) -> None:
    fuzz_endpoint(gw, client, CHAT, encoded(chat_requests()))


# Bodies that once earned a 500: tools that are not a list of objects (TypeError/AttributeError
# in wire/anthropic_requests.py from_anthropic_request).
MESSAGES_KNOWN = tuple(
    orjson.dumps(
        {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}], "tools": t}
    )
    for t in (True, 5, {"name": "x"}, [1], ["get_weather"], [None])
)


def test_messages_never_5xx(gw: Rig, client: httpx.Client) -> None:
    fuzz_endpoint(gw, client, MESSAGES, encoded(messages_requests()), known=MESSAGES_KNOWN)


def test_anything_at_all_as_json(gw: Rig, client: httpx.Client) -> None:
    anything: st.SearchStrategy[Any] = json_values | st.dictionaries(st.text(max_size=12), json_values)
    fuzz_endpoint(gw, client, CHAT, encoded(anything), LIGHT)
    fuzz_endpoint(gw, client, MESSAGES, encoded(anything), LIGHT)


@LIGHT
@given(body=encoded(messages_requests()))
@example(body=MESSAGES_KNOWN[0])
@example(body=MESSAGES_KNOWN[3])
def test_count_tokens_never_5xx(client: httpx.Client, body: bytes) -> None:
    check_response(client.post(COUNT, content=body, headers={"content-type": "application/json"}))


@FUZZ
@given(
    path=st.sampled_from([CHAT, MESSAGES, COUNT]),
    body=st.binary(max_size=300) | st.sampled_from([b"", b"{", b"[]", b"null", b'"x"', b"\xef\xbb\xbf{}"]),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_raw_bytes_and_odd_content_types(
    client: httpx.Client, path: str, body: bytes, content_type: str
) -> None:
    check_response(client.post(path, content=body, headers={"content-type": content_type}))


VALID: dict[str, Callable[[bool], Any]] = {
    CHAT: lambda stream: {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": stream},
    MESSAGES: lambda stream: {
        "model": "auto",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    },
}


@LIGHT
@given(
    path=st.sampled_from([CHAT, MESSAGES]),
    stream=st.booleans(),
    names=st.lists(
        st.sampled_from(
            [
                "x-hybridgate-route",
                "x-hybridgate-feature",
                "x-hybridgate-cohort",
                "x-request-id",
                "authorization",
                "x-api-key",
                "anthropic-version",
                "anthropic-beta",
                "accept",
                "accept-encoding",
                "x-stainless-retry-count",
            ]
        ),
        max_size=4,
        unique=True,
    ),
    values=st.lists(header_values, min_size=4, max_size=4),
)
def test_odd_headers_on_a_valid_request(
    client: httpx.Client, path: str, stream: bool, names: list[str], values: list[str]
) -> None:
    headers = [(name.encode(), value.encode("latin-1")) for name, value in zip(names, values, strict=False)]
    headers.append((b"content-type", b"application/json"))
    response = client.post(path, content=orjson.dumps(VALID[path](stream)), headers=headers)
    check_response(response)


@pytest.mark.parametrize("path", [CHAT, MESSAGES, COUNT])
@pytest.mark.parametrize("depth", [60, 140, 300, 600])
def test_deep_nesting(client: httpx.Client, path: str, depth: int) -> None:
    """Deep but parseable JSON in a field the gateway keeps and sends upstream."""
    for field in (b"content", b"tools", b"metadata", b"x_extra"):
        nested = b'"' + field + b'": [' + deep_nesting(depth) + b"]"
        body = b'{"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}], '
        check_response(client.post(path, content=body + nested + b"}"))
        message = b'{"model": "auto", "max_tokens": 8, "messages": [{"role": "user", ' + nested + b"}]}"
        check_response(client.post(path, content=message))


@pytest.mark.parametrize("path", [CHAT, MESSAGES, COUNT])
def test_oversized_bodies(client: httpx.Client, path: str) -> None:
    too_deep = b'{"model": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    check_response(client.post(path, content=too_deep))
    big = client.post(path, content=b'{"model": "' + b"x" * (128 * 1024) + b'"}')
    check_response(big)
    assert big.status_code == 413

    def chunks() -> Iterator[bytes]:  # no content-length: the limit must hold while reading
        for _ in range(200):
            yield b" " * 1024

    check_response(client.post(path, content=chunks()))
