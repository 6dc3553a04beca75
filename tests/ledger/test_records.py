"""LedgerRecord rows and the prompt HMAC: pure data, no I/O."""

from __future__ import annotations

import hashlib
import hmac

from hybridgate.ledger.records import COLUMNS, LedgerRecord, prompt_hmac, row_to_dict


def test_prompt_hmac_is_stable_and_secret_dependent() -> None:
    first = prompt_hmac(b"secret-a", "What is the capital of France?")
    assert first == prompt_hmac(b"secret-a", "What is the capital of France?")
    assert first != prompt_hmac(b"secret-b", "What is the capital of France?")
    assert first != prompt_hmac(b"secret-a", "What is the capital of Spain?")
    assert len(first) == 64 and int(first, 16) >= 0


def test_prompt_hmac_is_hmac_sha256_of_utf8() -> None:
    expected = hmac.new(b"k", "héllo".encode(), hashlib.sha256).hexdigest()
    assert prompt_hmac(b"k", "héllo") == expected


def test_row_round_trip_keeps_lists_and_bools() -> None:
    rec = LedgerRecord(
        ts=1.5,
        request_id="r1",
        feature="chat",
        stream=True,
        reasons=["long prompt", "has tools"],
        attempts=["local:error:timeout", "openai:ok"],
    )
    row = rec.to_row()
    assert len(row) == len(COLUMNS)
    as_dict = dict(zip(COLUMNS, row, strict=True))
    assert as_dict["reasons"] == '["long prompt", "has tools"]'
    assert as_dict["stream"] == 1
    assert LedgerRecord.from_row({"id": 7, **as_dict}) == rec
    assert row_to_dict(as_dict)["attempts"] == ["local:error:timeout", "openai:ok"]


def test_is_error_follows_http_status() -> None:
    assert not LedgerRecord(ts=0, request_id="a", status=200).is_error
    assert LedgerRecord(ts=0, request_id="a", status=502).is_error
