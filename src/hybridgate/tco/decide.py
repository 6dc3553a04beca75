"""The 5-step decision framework: closed API, enterprise API, managed open weights, self-host, hybrid.

Offline and pure. The steps run in order (data classification, quality bar, volume and shape,
ops maturity, fine-tuning need) and the walk stops at the first hard constraint: data that may
not leave the network, systemic PII, an open-weights tier below the quality bar, or a self-hosting
plan without anyone on call for the GPUs. The volume step prices the workload with ``tco.model``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hybridgate.ledger.money import usd
from hybridgate.tco.answers import Answers, RouteScore
from hybridgate.tco.measure import Workload
from hybridgate.tco.model import Assumptions, break_even_daily_tokens, compare
from hybridgate.tco.profiles import get_profile
from hybridgate.tco.report import human_tokens
from hybridgate.tco.starter import starter_config

CHOICES = {
    "closed_api": "Closed API",
    "enterprise_zdr": "Enterprise API with zero data retention",
    "managed_open_weights": "Managed open weights",
    "self_host": "Self-host",
    "hybrid": "Hybrid routing",
}
DEFAULT_PRICE_PER_MTOK = 8.0
DEFAULT_LOCAL_SHARE = 0.5
LONG_CONTEXT_TOKENS = 8000


@dataclass(frozen=True)
class Step:
    number: int
    name: str
    finding: str
    hard_stop: bool = False


# Which monthly figure of the volume step prices each choice (the others have no cost model).
PRICED = {"closed_api": "api", "enterprise_zdr": "api", "self_host": "selfhost", "hybrid": "hybrid"}
PRICED_TITLES = {"api": "the closed API", "selfhost": "self-hosting", "hybrid": "hybrid routing"}
# What the data step asks of the gateway's privacy screen, by finding.
PRIVACY_FOR = {"none": None, "episodic": "redact", "systemic": "redact"}


@dataclass
class Recommendation:
    choice: str
    steps: list[Step] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    stopped_at: int | None = None
    forced_by: Step | None = None  # the step that last set ``choice``
    privacy: str | None = None  # the [privacy] policy the starter config sets (None: no section)

    @property
    def title(self) -> str:
        return CHOICES[self.choice]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the starter config for the recommendation."""
        return {
            "recommendation": self.choice,
            "title": self.title,
            "stopped_at_step": self.stopped_at,
            "reasons": list(self.reasons),
            "steps": [dataclasses.asdict(step) for step in self.steps],
            "numbers": dict(self.numbers),
            "starter_config": starter_config(self.choice, self.title, privacy=self.privacy),
        }


@dataclass
class _Walk:
    """The state carried from step to step: the leaning so far, and what was found."""

    answers: Answers
    workload: Workload | None
    scores: dict[str, RouteScore] | None
    rec: Recommendation = field(default_factory=lambda: Recommendation("closed_api"))
    quality_unknown: bool = False

    def note(self, number: int, name: str, finding: str, reason: str | None = None) -> None:
        self.rec.steps.append(Step(number, name, finding))
        if reason:
            self.rec.reasons.append(reason)

    def stop(self, number: int, name: str, choice: str, reason: str) -> bool:
        step = Step(number, name, reason, hard_stop=True)
        self.rec.steps.append(step)
        self.rec.reasons.append(reason)
        self.rec.choice, self.rec.stopped_at, self.rec.forced_by = choice, number, step
        return True

    def choose(self, number: int, name: str, choice: str, finding: str, reason: str) -> None:
        """Set the leaning at step ``number``, remembering which step set it."""
        self.note(number, name, finding, reason)
        self.rec.choice, self.rec.forced_by = choice, self.rec.steps[-1]


def decide(
    answers: Answers, workload: Workload | None = None, scores: dict[str, RouteScore] | None = None
) -> Recommendation:
    """Walk the five steps; stop at the first hard constraint. Raises ValueError without a volume."""
    walk = _Walk(answers, workload, scores)
    steps: tuple[Callable[[_Walk], bool], ...] = (_data, _quality, _volume, _ops, _finetune)
    for step in steps:
        if step(walk):
            break
    _settings(walk.rec)
    _cost_check(walk.rec)
    return walk.rec


def _settings(rec: Recommendation) -> None:
    """What the starter config sets beyond the backends, said as reasons (the config has each)."""
    rec.reasons.append(
        "Pin every backend's model version (the starter config pins each one) so an upstream change "
        "shows as drift in /healthz, `usage` and the dashboard instead of silently."
    )
    rec.reasons.append(
        "Turn on virtual API keys ([auth] enabled = true in the starter config; "
        "`hybridgate keys create` issues them) so spend and limits are per caller."
    )


def _cost_check(rec: Recommendation) -> None:
    """When the choice is not the cheapest priced option, say so and name the step that forced it."""
    costs = {k: rec.numbers.get(f"{k}_monthly_usd") for k in PRICED_TITLES}
    priced = {k: v for k, v in costs.items() if v is not None}
    mine = PRICED.get(rec.choice)
    if not priced or mine is None or mine not in priced:
        return
    cheapest = min(priced, key=lambda k: priced[k])
    rec.numbers["cheapest_option"] = cheapest
    if priced[mine] <= priced[cheapest]:
        return
    step = rec.forced_by
    why = "" if step is None else f" Step {step.number} ({step.name}) forced it: {step.finding}."
    rec.reasons.append(
        f"Not the cheapest option: {rec.title} costs {usd(priced[mine])}/month against "
        f"{usd(priced[cheapest])}/month for {PRICED_TITLES[cheapest]}.{why}"
    )


def _data(walk: _Walk) -> bool:
    data, name = walk.answers.data, "data classification"
    walk.rec.privacy = PRIVACY_FOR[data.pii]
    if not data.can_leave_network:
        walk.rec.privacy = "local_only"
        reason = (
            "Prompts may not leave your network: only a model you run yourself can serve them "
            '([privacy] policy = "local_only" in the starter config).'
        )
        return walk.stop(1, name, "self_host", reason)
    if data.pii == "systemic":
        reason = (
            "Most prompts carry personal data: use an enterprise API with zero data retention and a DPA, "
            'and redact at the gateway too ([privacy] policy = "redact").'
        )
        return walk.stop(1, name, "enterprise_zdr", reason)
    if data.pii == "episodic":
        reason = (
            "Personal data appears now and then: redact it at the gateway before cloud calls "
            '([privacy] policy = "redact" in the starter config).'
        )
        walk.note(1, name, "episodic PII", reason)
    else:
        walk.note(1, name, "prompts may leave the network; no PII")
    return False


def _quality(walk: _Walk) -> bool:
    quality, name = walk.answers.quality, "quality bar"
    rates: list[tuple[str, float]] = []
    for route, score in (walk.scores or {}).items():
        if route in quality.local_routes and score.pass_rate is not None:
            rates.append((route, score.pass_rate))
    walk.rec.numbers["quality_bar"] = quality.bar
    meets: bool | None
    if rates:
        route, rate = max(rates, key=lambda r: r[1])  # the best local route is the one you'd use
        walk.rec.numbers["local_pass_rate"] = round(rate, 4)
        meets = rate >= quality.bar
        evidence = f"eval report: route '{route}' passes {rate:.0%} against a bar of {quality.bar:.0%}"
    else:
        meets, evidence = quality.open_weights_meet_bar, "your answer"
    if meets is False:
        reason = f"Open weights fall short of the quality bar ({evidence}): use a frontier closed API."
        return walk.stop(2, name, "closed_api", reason)
    if meets is None:
        walk.quality_unknown = True
        walk.note(2, name, "no eval evidence: the open-weights tier is unproven, so keep an API behind it")
    else:
        walk.note(2, name, f"open weights meet the bar ({evidence})")
    return False


def _volume(walk: _Walk) -> bool:
    daily, shape, a = _volume_inputs(walk)
    row, break_even = compare([daily], a)[0], break_even_daily_tokens(a)
    walk.rec.numbers.update(
        api_usd_per_mtok=round(a.api_usd_per_mtok, 4),
        api_monthly_usd=round(row.api_monthly_usd, 2),
        selfhost_monthly_usd=round(row.selfhost_monthly_usd, 2),
        hybrid_monthly_usd=round(row.hybrid_monthly_usd, 2),
        break_even_daily_tokens=None if break_even is None else round(break_even, 2),
    )
    name = "volume and shape"
    _embeddings(walk)
    figures = (
        f"{human_tokens(daily)} tokens/day at {usd(a.api_usd_per_mtok)}/Mtok: "
        f"API {usd(row.api_monthly_usd)}, "
        f"self-host {usd(row.selfhost_monthly_usd)}, hybrid {usd(row.hybrid_monthly_usd)} a month; "
        f"break-even {'never' if break_even is None else human_tokens(break_even) + ' tokens/day'}"
    )
    if break_even is None or daily < break_even:
        saving = row.selfhost_monthly_usd - row.api_monthly_usd
        reason = f"At this volume the API costs {usd(saving)}/month less than self-hosting ({figures})."
        walk.choose(3, name, "closed_api", "below break-even", reason)
    elif shape == "steady" and not walk.quality_unknown:
        reason = (
            f"Steady volume above break-even: a self-hosted stack stays busy and pays for itself ({figures})."
        )
        walk.choose(3, name, "self_host", "above break-even, steady", reason)
    else:
        why = "an unproven local tier" if walk.quality_unknown else f"{shape} traffic"
        reason = f"Above break-even with {why}: serve the base load locally, the rest on an API ({figures})."
        walk.choose(3, name, "hybrid", f"above break-even with {why}", reason)
    return False


# The rule of thumb for embeddings, in corpus chunks: below the first, API embeddings with cached
# vectors are fine; above the second, self-host the embedder or batch-embed on a schedule.
EMBED_API_FINE_CHUNKS = 500_000
EMBED_SELFHOST_CHUNKS = 5_000_000


def _embeddings(walk: _Walk) -> None:
    """Advice on the corpus, with the numbers it used; it never changes the recommendation."""
    volume, measured = walk.answers.volume, walk.workload.embeddings if walk.workload else None
    if volume.corpus_chunks is None:
        return
    chunks, numbers = volume.corpus_chunks, walk.rec.numbers
    monthly_tokens = chunks * volume.chunk_tokens * volume.reembeds_per_month
    uncached = monthly_tokens * volume.embed_price / 1e6
    numbers.update(
        corpus_chunks=chunks,
        reembeds_per_month=volume.reembeds_per_month,
        corpus_embed_monthly_usd=round(uncached, 2),
        embed_rule_chunks=[EMBED_API_FINE_CHUNKS, EMBED_SELFHOST_CHUNKS],
    )
    cost = (
        f"re-embedding {chunks:,} chunks x {volume.chunk_tokens} tokens {volume.reembeds_per_month:g}x a "
        f"month costs ${uncached:,.2f}/month at ${volume.embed_price:g}/Mtok without a cache"
    )
    if measured is not None:
        numbers["embed_cache_hit_rate"] = round(measured.hit_rate, 4)
        cost += f"; the ledger's per-text cache answered {measured.hit_rate:.0%} of texts"
    if chunks < EMBED_API_FINE_CHUNKS:
        advice = f"Under {EMBED_API_FINE_CHUNKS:,} chunks, API embeddings with cached vectors are fine"
    elif chunks > EMBED_SELFHOST_CHUNKS:
        advice = f"Over {EMBED_SELFHOST_CHUNKS:,} chunks, self-host the embedder or batch-embed on a schedule"
    else:
        advice = "Between the two thresholds, either works: cache vectors and compare the monthly figure"
    walk.rec.reasons.append(f"Embeddings: {advice} ({cost}).")


def _volume_inputs(walk: _Walk) -> tuple[float, str, Assumptions]:
    """Daily tokens, shape and pricing: the answers first, else the ledger, else stated defaults."""
    volume, workload, numbers = walk.answers.volume, walk.workload, walk.rec.numbers
    daily = volume.daily_tokens
    if daily is None and workload is not None:
        daily = workload.daily_tokens
    if daily is None:
        raise ValueError(
            "no volume: answer volume.daily_tokens, or use a ledger with traffic (--config, --ledger)"
        )
    shape = volume.shape or (workload.shape if workload else "unknown")
    context = volume.avg_context_tokens or (workload.avg_prompt_tokens if workload else None)
    numbers.update(
        daily_tokens=round(daily, 2),
        daily_tokens_source="answers" if volume.daily_tokens is not None else "ledger",
        shape=shape,
        avg_context_tokens=None if context is None else round(context, 1),
    )
    if context is not None and context > LONG_CONTEXT_TOKENS:
        walk.rec.reasons.append(f"Average context is {context:,.0f} tokens: size GPUs for the KV cache.")
    measured_price = workload.cloud_usd_per_mtok if workload else None
    local_share = workload.local_share if workload and workload.local_share > 0 else DEFAULT_LOCAL_SHARE
    a = Assumptions(
        api_usd_per_mtok=volume.blended_price or measured_price or DEFAULT_PRICE_PER_MTOK,
        profile=get_profile("l4"),
        selfhost_monthly_usd=volume.selfhost_monthly,
        local_share=local_share,
    )
    return daily, shape, a


def _ops(walk: _Walk) -> bool:
    ops, name = walk.answers.ops, "ops maturity"
    if walk.rec.choice not in ("self_host", "hybrid"):
        walk.note(4, name, "not needed: nothing to run yourself")
        return False
    if not ops.gpu_oncall:
        reason = "Nobody is on call for GPU nodes: let a provider run the open-weights model."
        return walk.stop(4, name, "managed_open_weights", reason)
    if not ops.version_pinning and walk.rec.choice == "self_host":
        reason = "No model version pinning in CI yet: keep an API fallback behind the local tier."
        walk.choose(4, name, "hybrid", "on-call but no version pinning", reason)
    else:
        walk.note(4, name, "on-call and version pinning in place")
    return False


def _finetune(walk: _Walk) -> bool:
    need, name = walk.answers.finetune.need, "fine-tuning need"
    if need == "weights" and walk.rec.choice == "closed_api":
        reason = "You need fine-tuned weights: use a managed open-weights provider that serves them."
        walk.choose(5, name, "managed_open_weights", "needs trained weights", reason)
    elif need == "weights":
        walk.note(5, name, "needs trained weights: you already run the model")
    else:
        walk.note(5, name, f"{need}: no custom weights needed")
    return False
