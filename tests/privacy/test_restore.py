"""Restoring redacted values in ``chat.completion`` bodies and chunk streams, as an OpenAI
upstream would send them. Values are synthetic; the map is filled directly."""

from __future__ import annotations

import json
from typing import Any

from hybridgate.privacy.redact import RedactionMap
from hybridgate.privacy.restore import ChunkRestorer, restore_completion

EMAIL = "jane.roe@example.org"
KEY = 'multi\nline "secret"'


def filled_map() -> RedactionMap:
    redactions = RedactionMap()
    assert redactions.placeholder_for("EMAIL_ADDRESS", EMAIL) == "<EMAIL_ADDRESS_1>"
    assert redactions.placeholder_for("PRIVATE_KEY", KEY) == "<PRIVATE_KEY_1>"
    return redactions


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def test_restore_completion_content_and_tool_arguments() -> None:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Sent to <EMAIL_ADDRESS_1>.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "store", "arguments": '{"key": "<PRIVATE_KEY_1>"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    restored = restore_completion(body, filled_map())
    message = restored["choices"][0]["message"]
    assert message["content"] == f"Sent to {EMAIL}."
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"key": KEY}
    assert restored["usage"] == body["usage"]
    assert body["choices"][0]["message"]["content"] == "Sent to <EMAIL_ADDRESS_1>."  # not mutated


def test_chunks_restore_a_placeholder_split_across_chunks() -> None:
    restorer = ChunkRestorer(filled_map())
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Mail <EMAIL"}),
        chunk({"content": "_ADDRESS_1> now <EMAIL_ADD"}),
        chunk({}, finish="stop"),
    ]
    out = [restorer.feed(c)["choices"][0]["delta"].get("content") for c in chunks]
    assert out == ["", "Mail ", f"{EMAIL} now ", "<EMAIL_ADD"]


def test_chunks_restore_streamed_tool_arguments_as_json() -> None:
    restorer = ChunkRestorer(filled_map())
    parts = ['{"key": "<PRIVATE', '_KEY_1>"', "}"]
    streamed = ""
    for part in parts:
        call = {"index": 0, "function": {"arguments": part}}
        out = restorer.feed(chunk({"tool_calls": [call]}))
        streamed += out["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(streamed) == {"key": KEY}


def test_held_tool_arguments_are_released_on_finish() -> None:
    restorer = ChunkRestorer(filled_map())
    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a": "<PRIV'}}
    first = restorer.feed(chunk({"tool_calls": [call]}))
    assert first["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == '{"a": "'
    last = restorer.feed(chunk({}, finish="tool_calls"))
    assert last["choices"][0]["delta"]["tool_calls"] == [{"index": 0, "function": {"arguments": "<PRIV"}}]


def test_flush_chunk_for_a_stream_that_ended_early() -> None:
    restorer = ChunkRestorer(filled_map())
    restorer.feed(chunk({"content": "bye <EMAIL_"}))
    final = restorer.flush_chunk(chunk({}) | {"usage": {"prompt_tokens": 1}})
    assert final is not None
    assert final["choices"] == [{"index": 0, "delta": {"content": "<EMAIL_"}, "finish_reason": None}]
    assert "usage" not in final
    assert restorer.flush_chunk(chunk({})) is None


def test_usage_chunk_and_empty_map_pass_through() -> None:
    usage_chunk = {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 1}}
    assert ChunkRestorer(filled_map()).feed(usage_chunk) is usage_chunk
    plain = chunk({"content": "<EMAIL_ADDRESS_1>"})
    assert ChunkRestorer(RedactionMap()).feed(plain) is plain
