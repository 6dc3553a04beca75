"""Dollar amounts for people: never ``$0.0000``, sensible precision at every size."""

from __future__ import annotations

import pytest

from hybridgate.ledger.money import per_1k, usd


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "$0"),
        (0.0000412, "$0.0000412"),
        (0.00042, "$0.000420"),
        (0.0123, "$0.0123"),
        (0.5, "$0.50"),
        (12.3456, "$12.35"),
        (12_345.678, "$12,345.68"),
        (-0.2, "-$0.20"),
    ],
)
def test_usd_keeps_significant_digits(value: float, text: str) -> None:
    assert usd(value) == text


def test_per_1k_requests() -> None:
    assert per_1k(0.0042, 12) == "$0.35" and per_1k(1.0, 0) == "-"
