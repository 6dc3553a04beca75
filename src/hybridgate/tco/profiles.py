"""Self-host profiles: what a GPU stack costs per month and how many tokens it serves per day.

Offline (``hybridgate tco`` / ``decide`` and the dashboard's projection). The numbers are typical
on-demand list prices and rough throughputs for a mid-size open-weights model, written down so
the math has something to start from: they are assumptions, and every one can be overridden
from the command line (see docs/tco.md). Plain data and arithmetic; no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

# Months are 30 days everywhere (API spend and GPU rental alike), as in the usual planning table.
DAYS_PER_MONTH = 30
HOURS_PER_MONTH = 24 * DAYS_PER_MONTH
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class GpuProfile:
    """One serving node: its hourly price, sustained throughput, and how busy it really is.

    ``throughput_tps`` counts prompt plus completion tokens per second across concurrent requests
    (a batching server such as vLLM), in the same units as the daily token volume.
    ``utilisation`` is the average share of that throughput actually used: idle time is paid for.
    ``platform_overhead`` adds the cost of running the node inside a platform (Kubernetes control
    plane, autoscaler headroom, monitoring) as a fraction of the GPU bill.
    """

    name: str
    title: str
    model_class: str
    hourly_usd: float
    throughput_tps: float
    utilisation: float
    embed_tps: float
    platform_overhead: float = 0.0
    min_nodes: int = 1

    @property
    def node_monthly_usd(self) -> float:
        return self.hourly_usd * HOURS_PER_MONTH * (1 + self.platform_overhead)

    @property
    def daily_capacity_tokens(self) -> float:
        """Tokens one node serves per day at its utilisation."""
        return self.throughput_tps * SECONDS_PER_DAY * self.utilisation

    def nodes_for(self, daily_tokens: float) -> int:
        return max(self.min_nodes, math.ceil(daily_tokens / self.daily_capacity_tokens))

    def usd_per_mtok(self, throughput_tps: float | None = None) -> float:
        """Effective local cost per million tokens: idle capacity shows up as a higher price."""
        tps = self.throughput_tps if throughput_tps is None else throughput_tps
        tokens_per_hour = tps * 3600 * self.utilisation
        return self.hourly_usd * (1 + self.platform_overhead) / tokens_per_hour * 1_000_000


# Typical on-demand list prices (2024-2025) and throughputs for an 8B-class model (70B on 2xH100).
# Assumptions to override with your own quotes and measurements, not vendor guarantees.
PROFILES: dict[str, GpuProfile] = {
    profile.name: profile
    for profile in (
        GpuProfile(
            name="l4",
            title="single L4 24GB / RTX 4090 class",
            model_class="7-8B, 8-bit",
            hourly_usd=0.80,
            throughput_tps=800,
            utilisation=0.5,
            embed_tps=20_000,
        ),
        GpuProfile(
            name="a100",
            title="1x A100 80GB",
            model_class="8B fp16 (or 70B 4-bit, at about a fifth of the throughput)",
            hourly_usd=2.50,
            throughput_tps=2_500,
            utilisation=0.5,
            embed_tps=60_000,
        ),
        GpuProfile(
            name="h100x2",
            title="2x H100 80GB",
            model_class="70B fp8, tensor parallel 2",
            hourly_usd=8.00,
            throughput_tps=3_000,
            utilisation=0.5,
            embed_tps=150_000,
        ),
        GpuProfile(
            name="k8s-pool",
            title="Kubernetes GPU pool (A100 nodes, +30% platform)",
            model_class="8B fp16, autoscaled",
            hourly_usd=2.50,
            throughput_tps=2_500,
            utilisation=0.6,
            embed_tps=60_000,
            platform_overhead=0.30,
            min_nodes=2,
        ),
    )
}


def get_profile(name: str) -> GpuProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown GPU profile '{name}'; choose one of: {', '.join(PROFILES)}") from None


def customise(
    profile: GpuProfile,
    *,
    hourly_usd: float | None = None,
    throughput_tps: float | None = None,
    utilisation: float | None = None,
    platform_overhead: float | None = None,
) -> GpuProfile:
    """The profile with the given fields replaced, after checking they make sense."""
    custom = dataclasses.replace(
        profile,
        hourly_usd=profile.hourly_usd if hourly_usd is None else hourly_usd,
        throughput_tps=profile.throughput_tps if throughput_tps is None else throughput_tps,
        utilisation=profile.utilisation if utilisation is None else utilisation,
        platform_overhead=profile.platform_overhead if platform_overhead is None else platform_overhead,
    )
    check_profile(custom)
    return custom


def check_profile(profile: GpuProfile) -> None:
    if profile.hourly_usd < 0:
        raise ValueError(f"GPU price must not be negative, got {profile.hourly_usd}")
    if profile.throughput_tps <= 0:
        raise ValueError(f"throughput must be positive tokens/s, got {profile.throughput_tps}")
    if not 0 < profile.utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {profile.utilisation}")
    if profile.platform_overhead < 0:
        raise ValueError(f"platform overhead must not be negative, got {profile.platform_overhead}")


@dataclass(frozen=True)
class People:
    """Engineering time to keep the stack running: a fraction of one full-time engineer."""

    fte: float = 0.25
    yearly_usd: float = 200_000.0

    def __post_init__(self) -> None:
        if self.fte < 0 or self.yearly_usd < 0:
            raise ValueError("people cost (FTE fraction, yearly rate) must not be negative")

    @property
    def monthly_usd(self) -> float:
        return self.fte * self.yearly_usd / 12
