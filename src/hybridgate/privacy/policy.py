"""Apply the privacy policy to one routed request: scan, then allow, redact, keep local or block.

Sits in the pipeline between the router's decision and the cascade. It may narrow the decision
(``local_only`` keeps only backends marked ``local = true``) or prepare a redacted copy of the
request for cloud backends (``redact``); it never widens where a request may go. When the policy
leaves no backend to try it fails closed with ``PrivacyPolicyError``: a prompt with PII never
falls back to a cloud tier. The decision's reasons name the entity types and counts found, never
their values.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, replace

from hybridgate.config import PrivacyConfig, PrivacyPolicy
from hybridgate.errors import PrivacyPolicyError
from hybridgate.privacy.detect import Findings, PiiDetector
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

    @property
    def pii(self) -> str | None:
        return self.findings.summary() if self.findings else None


class PrivacyGuard:
    def __init__(self, config: PrivacyConfig, local_backends: Collection[str]) -> None:
        self._config = config
        self._local = frozenset(local_backends)
        ner = None if config.ner_model in (None, "none") else config.ner_model
        self._detector = PiiDetector(config.entities, ner_model=ner)
        coverage = self._detector.coverage()
        log.warning("privacy: PII detection %s; %s", coverage["mode"], coverage["note"])

    def coverage(self) -> dict[str, object]:
        return self._detector.coverage()

    def policy_for(self, ctx: RequestContext, decision: Decision) -> PrivacyPolicy:
        """A route, feature or API key policy replaces the default; among those that apply, the
        strictest wins, so no single setting can loosen another."""
        candidates: list[PrivacyPolicy] = []
        if route_policy := self._config.routes.get(decision.route):
            candidates.append(route_policy)
        if ctx.feature and (feature_policy := self._config.features.get(ctx.feature)):
            candidates.append(feature_policy)
        if ctx.privacy_policy in STRICTNESS:
            candidates.append(ctx.privacy_policy)  # e.g. from the caller's API key
        return max(candidates, key=STRICTNESS.__getitem__) if candidates else self._config.policy

    def screen(self, request: ChatRequest, ctx: RequestContext, decision: Decision) -> Screening:
        policy = self.policy_for(ctx, decision)
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
            return Screening(self._keep_local(decision, findings), policy, findings)
        if policy == "redact" and any(name not in self._local for name in decision.backends):
            redacted, redactions = redact_request(request, self._detector, findings)
            return Screening(decision, policy, findings, redacted, redactions)
        return Screening(decision, policy, findings)

    def _keep_local(self, decision: Decision, findings: Findings) -> Decision:
        local = tuple(name for name in decision.backends if name in self._local)
        if not local:
            raise PrivacyPolicyError(
                f"the request contains PII ({findings.summary()}) and must stay local, but route "
                f"'{decision.route}' has no local backend (tries: {', '.join(decision.backends)})"
            )
        return replace(decision, backends=local)

    def is_local(self, backend: str) -> bool:
        return backend in self._local
