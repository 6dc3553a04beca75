"""A settable clock for auth tests, so windows and expiry are tested without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime

# Noon UTC mid-month: far from day and month boundaries unless a test moves there on purpose.
NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
