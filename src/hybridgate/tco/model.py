"""The TCO model: monthly cost of a workload on a closed API, self-hosted, and hybrid; break-even.

Offline and pure: numbers in, numbers out, no I/O, so the CLI, ``decide`` and the dashboard's
projection all share one set of formulas (written out in docs/tco.md). Volumes are tokens per
day (prompt plus completion); prices are dollars per million of those tokens.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from hybridgate.tco.profiles import DAYS_PER_MONTH, HOURS_PER_MONTH, GpuProfile, People, check_profile

MTOK = 1_000_000
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}
_VOLUME = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:e\d+)?)\s*([kmbg]?)\s*$", re.IGNORECASE)


def parse_tokens(text: str) -> float:
    """'500k' -> 500_000, '5M' -> 5_000_000, '1.5B' -> 1.5e9; negatives and junk raise ValueError."""
    match = _VOLUME.match(text)
    if match is None:
        raise ValueError(f"not a token volume: '{text}'; write e.g. 500k, 5M, 1.5B or 20000000")
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if value < 0:
        raise ValueError(f"token volume must not be negative, got '{text}'")
    return value


def parse_volumes(text: str) -> list[float]:
    volumes = [parse_tokens(part) for part in text.split(",") if part.strip()]
    if not volumes:
        raise ValueError("no daily token volumes given; write e.g. --daily-tokens 500k,5M,20M")
    return volumes


@dataclass(frozen=True)
class Assumptions:
    """Everything the model needs besides the volume. See docs/tco.md for each line."""

    api_usd_per_mtok: float
    profile: GpuProfile
    people: People = field(default_factory=People)
    selfhost_monthly_usd: float | None = None  # all-in (infrastructure and people); replaces both
    local_share: float = 0.5  # share of tokens the hybrid router keeps on the local tier
    overhead: float = 0.0  # extra tokens for retries and evals, as a fraction of the traffic
    embed_daily_tokens: float = 0.0
    embed_usd_per_mtok: float = 0.02

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if self.api_usd_per_mtok < 0:
            raise ValueError(f"API price must not be negative, got {self.api_usd_per_mtok}")
        if self.selfhost_monthly_usd is not None and self.selfhost_monthly_usd < 0:
            raise ValueError(f"self-host monthly cost must not be negative, got {self.selfhost_monthly_usd}")
        if not 0 <= self.local_share <= 1:
            raise ValueError(f"local share must be between 0 and 1, got {self.local_share}")
        if self.overhead < 0 or self.embed_daily_tokens < 0 or self.embed_usd_per_mtok < 0:
            raise ValueError("overhead, embedding volume and embedding price must not be negative")

    @property
    def api_usd_per_daily_token(self) -> float:
        """Monthly API dollars per token of daily volume, retries and evals included."""
        return (1 + self.overhead) * DAYS_PER_MONTH * self.api_usd_per_mtok / MTOK


@dataclass(frozen=True)
class Row:
    daily_tokens: float
    api_monthly_usd: float
    selfhost_monthly_usd: float
    hybrid_monthly_usd: float
    selfhost_nodes: int | None  # None when the self-host cost is one all-in figure
    cheapest: str


def embed_api_monthly(a: Assumptions) -> float:
    return a.embed_daily_tokens * DAYS_PER_MONTH * a.embed_usd_per_mtok / MTOK


def embed_local_monthly(a: Assumptions) -> float:
    """GPU hours to embed the corpus and queries locally, at the profile's hourly price."""
    hours = a.embed_daily_tokens * DAYS_PER_MONTH / (a.profile.embed_tps * 3600)
    return hours * a.profile.hourly_usd * (1 + a.profile.platform_overhead)


def api_monthly(daily_tokens: float, a: Assumptions) -> float:
    return daily_tokens * a.api_usd_per_daily_token + embed_api_monthly(a)


def stack_monthly(daily_tokens: float, a: Assumptions) -> tuple[float, int | None]:
    """The self-hosted stack sized for ``daily_tokens`` (embeddings excluded), and its node count."""
    if a.selfhost_monthly_usd is not None:
        return a.selfhost_monthly_usd, None
    nodes = a.profile.nodes_for(daily_tokens * (1 + a.overhead))
    return nodes * a.profile.node_monthly_usd + a.people.monthly_usd, nodes


def selfhost_monthly(daily_tokens: float, a: Assumptions) -> tuple[float, int | None]:
    stack, nodes = stack_monthly(daily_tokens, a)
    return stack + embed_local_monthly(a), nodes


def hybrid_monthly(daily_tokens: float, a: Assumptions) -> float:
    """A local stack sized for the router's local share, the rest of the traffic on the API."""
    if a.local_share == 0:
        return api_monthly(daily_tokens, a)
    stack, _ = stack_monthly(daily_tokens * a.local_share, a)
    cloud = daily_tokens * (1 - a.local_share) * a.api_usd_per_daily_token
    return stack + cloud + embed_local_monthly(a)


def compare(volumes: list[float], a: Assumptions) -> list[Row]:
    """One row per daily volume: the three ways of serving it, and which is cheapest."""
    rows = []
    for volume in volumes:
        if volume < 0:
            raise ValueError(f"token volume must not be negative, got {volume}")
        api = api_monthly(volume, a)
        selfhost, nodes = selfhost_monthly(volume, a)
        hybrid = hybrid_monthly(volume, a)
        costs = {"api": api, "selfhost": selfhost, "hybrid": hybrid}
        rows.append(Row(volume, api, selfhost, hybrid, nodes, min(costs, key=lambda k: costs[k])))
    return rows


def break_even_daily_tokens(a: Assumptions) -> float | None:
    """The smallest daily volume at which self-hosting costs no more than the API; None if never.

    The API cost is linear in volume; the self-host cost is a step function (one more node per
    ``capacity`` tokens a day), so the crossover is solved in closed form per step.
    """
    per_token = a.api_usd_per_daily_token
    if per_token == 0:
        return None
    embed_gap = embed_local_monthly(a) - embed_api_monthly(a)
    if a.selfhost_monthly_usd is not None:
        return max((a.selfhost_monthly_usd + embed_gap) / per_token, 0.0)
    node, n0 = a.profile.node_monthly_usd, a.profile.min_nodes
    capacity = a.profile.daily_capacity_tokens / (1 + a.overhead)
    fixed = a.people.monthly_usd + embed_gap
    first = (n0 * node + fixed) / per_token
    if first <= n0 * capacity:
        return max(first, 0.0)
    margin = per_token * capacity - node  # what each extra node saves over the API at full load
    if margin <= 0:
        return None
    nodes = max(n0 + 1, math.ceil(fixed / margin))
    while (nodes * node + fixed) / per_token > nodes * capacity:  # float rounding in ceil()
        nodes += 1
    return (nodes * node + fixed) / per_token


def local_tier(
    profile: GpuProfile, gateway_tps: float | None, *, throughput_source: str = "profile"
) -> dict[str, object]:
    """The local tier's effective $/Mtok from the profile's hardware: its price, its throughput
    (the profile's, ``--throughput-tps``, or ``--measure`` on that hardware; ``throughput_source``
    says which) and its load.

    ``gateway_tps`` (the ledger's local backends, on whatever machine the gateway runs) is reported
    beside it but never priced: multiplying a CPU test model's speed by a GPU's price is nonsense.
    """
    tps = profile.throughput_tps
    return {
        "profile": profile.name,
        "gpu_hourly_usd": profile.hourly_usd,
        "node_monthly_usd": round(profile.hourly_usd * HOURS_PER_MONTH * (1 + profile.platform_overhead), 2),
        "throughput_tps": round(tps, 2),
        "throughput_source": throughput_source,
        "utilisation": profile.utilisation,
        "usd_per_mtok": round(profile.usd_per_mtok(tps), 4) if tps > 0 else None,
        "gateway_measured_tps": None if gateway_tps is None else round(gateway_tps, 2),
    }
