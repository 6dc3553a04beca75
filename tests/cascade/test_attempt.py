"""The typed attempt and its ledger text: the text is the format rows, rollups and replays read."""

from __future__ import annotations

from hybridgate.cascade.attempt import Attempt, as_text
from hybridgate.cascade.core import Trail
from hybridgate.errors import UpstreamTimeoutError


def test_the_ledger_text_of_each_kind_is_todays_format() -> None:
    timeout = UpstreamTimeoutError("slow")
    attempts = [
        Attempt.retry("cloud", timeout),
        Attempt.error("cloud", timeout),
        Attempt("cheap", "check_failed", "json"),
        Attempt("lan", "refused", "media_url"),
        Attempt.ok("local"),
    ]
    assert as_text(attempts) == [
        f"cloud:retry:{timeout.type}",
        f"cloud:error:{timeout.type}",
        "cheap:check_failed:json",
        "lan:refused:media_url",
        "local:ok",
    ]
    assert attempts[1].status == timeout.status_code == 504


def test_a_trail_is_clean_only_without_errors_and_ending_ok() -> None:
    failed = UpstreamTimeoutError("slow")
    assert Trail([Attempt.retry("a", failed), Attempt.ok("a")]).clean
    assert not Trail([Attempt.error("a", failed), Attempt.ok("b")]).clean
    assert not Trail([Attempt("a", "check_failed", "json")]).clean
    assert not Trail().clean
