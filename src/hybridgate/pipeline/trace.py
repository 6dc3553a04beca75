"""What is known about one request so far: the pipeline fills it in, its stream finishes it,
and it becomes the request's ledger record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hybridgate.cascade.core import Served, Trail
from hybridgate.privacy.gate import Clearance

if TYPE_CHECKING:
    from hybridgate.auth import Reservation
    from hybridgate.cache import CachedAnswer
    from hybridgate.privacy.policy import Screening
    from hybridgate.privacy.redact import RedactionMap
    from hybridgate.types import ChatRequest, Decision, RequestContext


@dataclass
class Trace:
    """What is known about one request so far; becomes its ledger record."""

    ctx: RequestContext
    request: ChatRequest | None
    decision: Decision | None = None
    served: Served | None = None
    trail: Trail = field(default_factory=Trail)
    screening: Screening | None = None
    ttft_ms: float | None = None
    cache: str | None = None  # hit | semantic-hit | miss | bypass; None without a cache
    hit: CachedAnswer | None = None
    reservation: Reservation | None = None  # the worst case held against the key until settled
    finish_reasons: list[str] = field(default_factory=list)  # for the trace span
    response_id: str | None = None
    answer: list[str] | None = None  # the answer's text, kept only when spans may carry content

    @property
    def backend(self) -> str:
        return self.served.backend.name if self.served else self.hit.backend if self.hit else ""

    @property
    def model(self) -> str | None:
        if self.served:
            return self.served.model
        if self.hit:
            return self.hit.model
        return self.request.model if self.request else None

    @property
    def policy(self) -> str | None:
        """The effective privacy policy: the screen's, or without [privacy] the one the context
        carries (a key's, a replayed row's)."""
        return self.screening.policy if self.screening else self.ctx.privacy_policy

    def clearance(self) -> Clearance | None:
        """What the egress gate applies to this request's non-local calls. Not scanned (no
        [privacy]) but under a strict policy (a key's, a replayed row's): treated as PII."""
        if self.screening is not None:
            return self.screening.clearance(self.ctx.origin)
        if self.ctx.privacy_policy in ("redact", "local_only", "block"):
            return Clearance(self.ctx.privacy_policy, True, self.ctx.origin)
        return None

    def redactions_for(self, served: Served | None) -> RedactionMap | None:
        """The placeholders to restore in the answer: only a cloud backend saw them."""
        if self.screening is None or served is None or served.backend.local:
            return None
        return self.screening.redactions
