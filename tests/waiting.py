"""The one polling helper: wait for a condition, not for a clock.

Tests wait for what they are about to assert (a ledger row, a Redis key, a task count), never for
a fixed time: the condition is checked at once, then at a short interval that grows a little, and
the wait fails loudly with ``what`` once ``timeout_s`` has passed without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object], timeout_s: float = 10.0, what: str = "the condition"
) -> float:
    """Return the seconds it took ``condition()`` to be truthy; AssertionError after ``timeout_s``."""
    started = time.monotonic()
    interval = 0.005
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < timeout_s, f"timed out after {timeout_s}s waiting for {what}"
        time.sleep(min(interval, max(timeout_s - elapsed, 0.001)))
        interval = min(interval * 1.5, 0.1)
    return time.monotonic() - started
