"""Counting over time for the limiter: an exact sliding minute, and UTC calendar days and months.

Pure bookkeeping under an injected ``now``: no clock of its own, no I/O, no locks (the in-memory
limiter runs on one event loop and never awaits between reading and updating a window).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

MINUTE_S = 60.0


class SlidingWindow:
    """Amounts added in the last ``span_s`` seconds, counted exactly: a log, not buckets.

    Memory is one entry per ``add`` still inside the window, so a key limited to N requests per
    minute holds at most N entries.
    """

    def __init__(self, span_s: float = MINUTE_S) -> None:
        self._span_s = span_s
        self._events: deque[tuple[float, int]] = deque()
        self._total = 0

    def total(self, now: float) -> int:
        self._expire(now)
        return self._total

    def add(self, now: float, amount: int) -> None:
        self._expire(now)
        self._events.append((now, amount))
        self._total += amount

    def amend(self, at: float, amount: int, new_amount: int) -> bool:
        """Change the entry added at ``at`` with ``amount`` to ``new_amount`` (a reservation
        settled); False if it has left the window already."""
        for index in range(len(self._events) - 1, -1, -1):
            entry_at, entry_amount = self._events[index]
            if entry_at < at:
                break
            if entry_at == at and entry_amount == amount:
                self._events[index] = (at, new_amount)
                self._total += new_amount - amount
                return True
        return False

    def wait_s(self, limit: int, now: float) -> float:
        """Seconds until the total drops below ``limit`` (0 if it already is)."""
        excess = self.total(now) - limit + 1
        if excess <= 0:
            return 0.0
        for at, amount in self._events:
            excess -= amount
            if excess <= 0:
                return max(0.0, at + self._span_s - now)
        return 0.0

    def reset_s(self, now: float) -> float:
        """Seconds until everything now counted has left the window."""
        self._expire(now)
        return max(0.0, self._events[-1][0] + self._span_s - now) if self._events else 0.0

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self._span_s:
            self._total -= self._events.popleft()[1]


class PeriodSpend:
    """Dollars spent in the current calendar period; the sum restarts when the period changes."""

    def __init__(self, period_of: Callable[[float], str]) -> None:
        self._period_of = period_of
        self._period = ""
        self._usd = 0.0

    def usd(self, now: float) -> float:
        return self._usd if self._period == self._period_of(now) else 0.0

    def add(self, now: float, usd: float) -> None:
        self.set(now, self.usd(now) + usd)

    def adjust(self, at: float, usd: float) -> None:
        """Add ``usd`` (may be negative, never below 0) to the period of ``at``, if still current."""
        if self._period == self._period_of(at):
            self._usd = max(0.0, self._usd + usd)

    def set(self, now: float, usd: float) -> None:
        self._period = self._period_of(now)
        self._usd = usd


def day_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def month_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def next_day(now: float) -> datetime:
    start = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return datetime.fromtimestamp(start.timestamp() + 86_400, UTC)


def next_month(now: float) -> datetime:
    today = datetime.fromtimestamp(now, UTC)
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def format_duration(seconds: float) -> str:
    """OpenAI's style for ``x-ratelimit-reset-*``: ``20ms``, ``1.5s``, ``6m0s``, ``2h5m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"
