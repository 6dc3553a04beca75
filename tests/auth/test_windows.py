"""Window arithmetic and reset formatting used by the limiter (pure functions, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hybridgate.auth.windows import PeriodSpend, SlidingWindow, day_of, format_duration, next_day, next_month


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0ms"), (0.02, "20ms"), (1, "1s"), (1.5, "1.5s"), (59.25, "59.25s"), (60, "1m0s"), (390, "6m30s"),
     (7500, "2h5m0s"), (86_400 * 2, "48h0m0s")],
)  # fmt: skip
def test_format_duration_in_openai_style(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_next_month_rolls_over_the_year() -> None:
    late = datetime(2025, 12, 31, 23, 59, tzinfo=UTC).timestamp()
    assert next_month(late) == datetime(2026, 1, 1, tzinfo=UTC)
    assert next_day(late) == datetime(2026, 1, 1, tzinfo=UTC)


def test_sliding_window_waits_until_enough_has_left() -> None:
    window = SlidingWindow(60)
    for at, amount in ((0, 50), (10, 30), (20, 40)):
        window.add(at, amount)
    assert window.total(25) == 120
    assert window.wait_s(100, 25) == 35  # dropping 50 (t=0, leaves at 60) gets to 70 < 100
    assert window.wait_s(50, 25) == 45  # needs 50 and 30 gone: t=10 leaves at 70
    assert window.wait_s(200, 25) == 0
    assert window.reset_s(25) == 55
    assert window.total(60) == 70


def test_period_spend_restarts_with_the_period() -> None:
    spend = PeriodSpend(day_of)
    noon = datetime(2025, 3, 14, 12, tzinfo=UTC).timestamp()
    spend.add(noon, 1.5)
    spend.add(noon + 60, 0.5)
    assert spend.usd(noon + 3600) == 2.0
    assert spend.usd(noon + 12 * 3600) == 0.0
    spend.add(noon + 12 * 3600, 0.25)
    assert spend.usd(noon + 13 * 3600) == 0.25
