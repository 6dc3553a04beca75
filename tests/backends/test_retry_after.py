"""Reading an upstream's Retry-After: seconds, OpenAI's retry-after-ms, and forms we ignore."""

from __future__ import annotations

from hybridgate.backends.base import retry_after_s


def test_retry_after_forms() -> None:
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "3"}) == 0.25  # the finer one wins
    assert retry_after_s({"retry-after": "-5"}) == 0.0
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None  # dates: default backoff
    assert retry_after_s({}) is None
