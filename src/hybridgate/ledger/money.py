"""Dollar amounts for people: sensible precision, never ``$0.0000``.

Pure formatting for the offline reports (``usage``, ``tco``, ``decide``) and the dashboard's
server side; it must not do I/O.
"""

from __future__ import annotations

import math


def usd(value: float) -> str:
    """``$1,234.56`` from ten cents up, else three significant digits (``$0.0123``, ``$0.0000412``)."""
    if value == 0 or not math.isfinite(value):
        return "$0"
    sign = "-" if value < 0 else ""
    size = abs(value)
    if size >= 0.1:
        return f"{sign}${size:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(size)))
    return f"{sign}${size:.{decimals}f}"


def per_1k(cost_usd: float, requests: int) -> str:
    """Cost per thousand requests, or ``-`` without requests."""
    return usd(cost_usd / requests * 1000) if requests else "-"
