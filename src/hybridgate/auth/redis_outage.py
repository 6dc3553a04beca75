"""What ``RedisLimiter`` keeps while Redis is unreachable: the reason, when to try again, and the
spend charged locally meanwhile, to write back once Redis answers.

Spend that was never sent is summed per key and day. A charge that was sent but got no answer
(a timeout, a dropped connection) may or may not have been applied, so it keeps its own id and
is written back under it; Redis applies an id at most once (``redis_scripts.CHARGE``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from hybridgate.auth.windows import day_of


@dataclass(frozen=True)
class Charge:
    """Spend for Redis under a unique id, which it applies at most once (``redis_scripts.CHARGE``)."""

    charge_id: str
    key_id: str
    usd: float
    at: float
    """When it was charged: picks the day and month it counts for."""


@dataclass
class Outage:
    """Whether Redis is unreachable, since when, when to try it again, and the spend to write back."""

    retry_interval_s: float
    reason: str | None = None
    next_try: float = 0.0
    unsent: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    """Spend charged locally while Redis was down, never sent: (key id, day) -> (dollars, when)."""
    pending: list[Charge] = field(default_factory=list)
    """Charges Redis may or may not have applied (sent, no answer), and unsent sums being written."""

    def begin(self, exc: BaseException, now: float) -> bool:
        """Record a failure; True if this starts a new outage."""
        first = self.reason is None
        self.reason = f"redis unreachable ({type(exc).__name__}: {exc}); limits are per process"
        self.next_try = now + self.retry_interval_s
        return first

    def keep(self, charge: Charge, sent: bool) -> None:
        """Remember spend charged locally, to write back once Redis answers again."""
        if sent:  # Redis may have applied it: written back under the same id, so at most once
            self.pending.append(charge)
            return
        period = (charge.key_id, day_of(charge.at))
        usd, at = self.unsent.get(period, (0.0, charge.at))
        self.unsent[period] = (usd + charge.usd, at)

    def take(self) -> list[Charge]:
        """Everything to write back, each unsent sum now a charge with its own id."""
        for (key_id, _), (usd, at) in self.unsent.items():
            self.pending.append(Charge(secrets.token_hex(8), key_id, usd, at))
        taken, self.unsent, self.pending = self.pending, {}, []
        return taken
