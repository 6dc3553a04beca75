"""Offline: what serving your traffic costs three ways, when self-hosting pays, what to choose.

``profiles`` holds the GPU assumptions; ``model`` the cost formulas and the break-even; ``measure``
reads the workload from the ledger (read-only); ``report`` and ``chart`` render a comparison;
``answers``, ``decide`` and ``starter`` are the decision framework behind ``hybridgate decide``.
Pure functions apart from ``measure``'s ledger reads; never imported by the request path (the
dashboard's JSON endpoints call the pure ones).
"""

from hybridgate.tco.decide import CHOICES, Recommendation, decide
from hybridgate.tco.measure import Workload, read_workload
from hybridgate.tco.model import Assumptions, break_even_daily_tokens, compare, parse_tokens, parse_volumes
from hybridgate.tco.profiles import PROFILES, GpuProfile, People, get_profile
from hybridgate.tco.report import build_report

__all__ = [
    "CHOICES",
    "PROFILES",
    "Assumptions",
    "GpuProfile",
    "People",
    "Recommendation",
    "Workload",
    "break_even_daily_tokens",
    "build_report",
    "compare",
    "decide",
    "get_profile",
    "parse_tokens",
    "parse_volumes",
    "read_workload",
]
