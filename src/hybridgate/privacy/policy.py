"""Apply the privacy policy to one routed request: scan, then allow, redact, keep local or block.

Sits in the pipeline between the router's decision and the cascade. It may narrow the decision
(``local_only`` keeps only backends marked ``local = true``) or prepare a redacted copy of the
request for cloud backends (``redact``); it never widens where a request may go. When the policy
leaves no backend to try it fails closed with ``PrivacyPolicyError``: a prompt with PII never
falls back to a cloud tier. The decision's reasons name the entity types and counts found, never
their values. The ``Screening`` becomes the ``Clearance`` the egress gate (``gate.py``) applies
to every non-local call the request makes.

The effective policy is the strictest of: the environment default (``[privacy] policy``), the
caller's API key, the feature, the route the request asked for (its ``model``; ``auto`` is the
default route) and the route it lands on. A rule, an ``x-hybridgate-route`` header or a fallback
can therefore never loosen it; shadow copies and replays carry the original request's policy in
``RequestContext.privacy_policy``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from hybridgate.config import PrivacyConfig, PrivacyPolicy
from hybridgate.errors import PrivacyPolicyError
from hybridgate.privacy.detect import Findings, PiiDetector
from hybridgate.privacy.gate import Clearance
from hybridgate.privacy.redact import RedactionMap, redact_request, request_texts
from hybridgate.types import ChatRequest, Decision, RequestContext

log = logging.getLogger("hybridgate.privacy")

STRICTNESS: dict[PrivacyPolicy, int] = {"allow": 0, "redact": 1, "local_only": 2, "block": 3}


@dataclass(frozen=True)
class Screening:
    """The outcome for one request. ``redacted``/``redactions`` are set only under ``redact``."""

    decision: Decision
    policy: PrivacyPolicy
    findings: Findings | None = None
    redacted: ChatRequest | None = None
    redactions: RedactionMap | None = None
    withheld: tuple[str, ...] = ()  # non-local backends removed from the route (local_only)

    @property
    def pii(self) -> str | None:
        return self.findings.summary() if self.findings else None

    def clearance(self, origin: str) -> Clearance:
        """What the egress gate needs to let this request's calls out, or not."""
        return Clearance(self.policy, bool(self.findings), origin, self.redacted, self.withheld)


def strictest(policies: Iterable[str | None]) -> PrivacyPolicy:
    """The strictest of the known policies given (``allow`` when none is)."""
    given = set(policies)
    known = [policy for policy in STRICTNESS if policy in given]
    return max(known, key=STRICTNESS.__getitem__) if known else "allow"


class PrivacyGuard:
    def __init__(
        self,
        config: PrivacyConfig,
        local_backends: Collection[str],
        routes: Collection[str] = (),
        default_route: str = "auto",
        *,
        normalise_text: bool = True,  # off only in `bench pii`, to measure what normalising adds
    ) -> None:
        self._config = config
        self._local = frozenset(local_backends)
        self._routes = frozenset(routes)
        self._default_route = default_route
        ner = None if config.ner_model in (None, "none") else config.ner_model
        self._detector = PiiDetector(config.entities, ner_model=ner, normalise_text=normalise_text)
        coverage = self._detector.coverage()
        log.warning("privacy: PII detection %s; %s", coverage["mode"], coverage["note"])

    def coverage(self) -> dict[str, object]:
        return self._detector.coverage()

    def asked_route(self, request: ChatRequest) -> str | None:
        """The route the request named: its ``model``, the default route for ``auto``; None for
        a concrete ``backend/model``."""
        if request.model in ("auto", self._default_route):
            return self._default_route
        return request.model if request.model in self._routes else None

    def policy_for(
        self, ctx: RequestContext, decision: Decision, request: ChatRequest | None = None
    ) -> PrivacyPolicy:
        """The strictest of every policy that applies (see the module docstring), so no single
        setting, rule or header can loosen another."""
        routes = self._config.routes
        asked = self.asked_route(request) if request is not None else None
        return strictest(
            (
                self._config.policy,  # the environment default protects every request
                ctx.privacy_policy,  # the caller's API key, or the request a shadow/replay copies
                self._config.features.get(ctx.feature) if ctx.feature else None,
                routes.get(asked) if asked else None,
                routes.get(decision.route),
            )
        )

    def screen(self, request: ChatRequest, ctx: RequestContext, decision: Decision) -> Screening:
        policy = self.policy_for(ctx, decision, request)
        findings = self._detector.scan(request_texts(request))
        if not findings:
            return Screening(decision, policy, findings)
        reasons = (*decision.reasons, f"pii: {findings.summary()} -> {policy}")
        decision = replace(decision, reasons=reasons)
        if policy == "block":
            raise PrivacyPolicyError(
                f"the request contains PII ({findings.summary()}) and the privacy policy for route "
                f"'{decision.route}' is 'block'; remove it or ask for a route that allows it"
            )
        if policy == "local_only":
            withheld = tuple(name for name in decision.backends if name not in self._local)
            return Screening(self._keep_local(decision), policy, findings, withheld=withheld)
        if policy == "redact" and any(name not in self._local for name in decision.backends):
            redacted, redactions = redact_request(request, self._detector, findings)
            return Screening(decision, policy, findings, redacted, redactions)
        return Screening(decision, policy, findings)

    def _keep_local(self, decision: Decision) -> Decision:
        """Only the local backends; none left fails closed in the cascade, after the egress gate
        has recorded each withheld backend as blocked."""
        return replace(decision, backends=tuple(name for name in decision.backends if name in self._local))

    def is_local(self, backend: str) -> bool:
        return backend in self._local
